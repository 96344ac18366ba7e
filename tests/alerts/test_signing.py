"""XML-DSig signatures on CAP messages: what leaves is signed and still valid CAP 1.2; a changed byte, a
missing signature, a stranger's key, a wrapped or moved signature and hostile XML are refused with one line;
``yzt cap verify`` says so with its exit status."""
from __future__ import annotations

import random
import stat
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from command.alerts import cap, signing
from command.alerts.area import build_area
from command.cli.main import main
from command.errors import CapSignatureError
from incidents.model import Grade, Point, Rule

NS = {"c": cap.CAP_NS, "ds": signing.DS_NS}
SENT = datetime(2026, 3, 14, 9, 12, 0, tzinfo=cap.BEIJING)
LEVEL = Grade("III", "较大", "黄", "Moderate", Rule("条例", "第三条", "test"))
SHARED_CAP = Path(__file__).resolve().parents[2].parent / "shared" / "standards" / "cap"


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return signing.load_signer(key=None, cert=None, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    return signing.load_signer(key=None, cert=None, var_dir=tmp_path_factory.mktemp("other"))


@pytest.fixture(scope="module")
def area():
    return build_area(Point(113.3186, 23.1391), type="gas_explosion", level="III")


def build(area, signer, **kw) -> str:
    args = dict(identifier="44010612300000_20260314091200_0", sender="yzt@440106.gd.gov.cn", sent=SENT,
                status="Actual", msg_type="Alert", incident_type="gas_explosion", grade=LEVEL, area=area,
                instruction_zh="请向东侧疏散", instruction_en="Evacuate eastwards",
                profile=cap.CapProfile(org_code="123", contact="020-83388110",
                                       public_base_url="https://yzt.gd.example", signer=signer))
    args.update(kw)
    return cap.build_alert(**args)


@pytest.fixture(scope="module")
def signed(area, signer):
    return build(area, signer)


def test_a_built_message_is_signed_and_still_valid_cap(signed, signer):
    root = etree.fromstring(signed.encode())
    sig = root[-1]
    assert sig.tag == f"{{{signing.DS_NS}}}Signature"          # last child of <alert>, where the XSD allows it
    assert cap.schema().validate(root)
    cap.validate(signed)
    assert sig.find("ds:SignedInfo/ds:Reference", NS).get("URI") == ""
    got = signing.verify(signed, trusted=[signer.cert_pem])
    assert got.signer == signing.SELF_SIGNED_CN and got.identifier == "44010612300000_20260314091200_0"
    assert got.root.find("ds:Signature", NS) is None                      # signxml's verified copy
    assert got.root.findtext("c:info/c:headline", namespaces=NS) == root.findtext("c:info/c:headline",
                                                                                   namespaces=NS)


def test_one_changed_byte_fails(signed, signer):
    body_start = signed.index("<alert")
    positions = random.Random(11).sample(range(body_start, len(signed)), 150)
    # and the places a forger would aim at: the headline, the area, the status
    positions += [signed.index(s) + 1 for s in ("<headline>", "<circle>", "<status>", "<expires>", "<web>")]
    positions += [signed.index("</headline>") - 1, signed.index("<status>") + len("<status>")]
    for pos in positions:
        c = signed[pos]
        changed = signed[:pos] + ("Y" if c == "X" else "X") + signed[pos + 1:]
        with pytest.raises(CapSignatureError):
            signing.verify(changed, trusted=[signer.cert_pem])


def test_unsigned_and_a_strangers_signature_fail(area, signed, signer, stranger):
    unsigned = build(area, None)
    with pytest.raises(CapSignatureError, match="unsigned"):
        signing.verify(unsigned, trusted=[signer.cert_pem])
    theirs = build(area, stranger)
    with pytest.raises(CapSignatureError):
        signing.verify(theirs, trusted=[signer.cert_pem])
    # the stranger puts our certificate in their signature: still their key, still refused
    ours_b64 = "".join(signer.cert_pem.decode().split("\n")[1:-2])
    theirs_b64 = etree.fromstring(theirs.encode()).findtext(".//ds:X509Certificate", namespaces=NS)
    with pytest.raises(CapSignatureError):
        signing.verify(theirs.replace(theirs_b64, ours_b64), trusted=[signer.cert_pem])
    # our signature with the stranger's certificate pasted in: the message no longer says who signed it
    ours_in_msg = etree.fromstring(signed.encode()).findtext(".//ds:X509Certificate", namespaces=NS)
    with pytest.raises(CapSignatureError, match="certificate"):
        signing.verify(signed.replace(ours_in_msg, theirs_b64), trusted=[signer.cert_pem])
    with pytest.raises(CapSignatureError, match="no trusted certificate"):
        signing.verify(signed, trusted=[])


def test_signature_wrapping_and_moved_signatures_fail(area, signed, signer):
    forged = build(area, None, headline_zh="全市立即撤离", identifier="44010612300000_20260314091300_0")
    sig = etree.fromstring(signed.encode()).find("ds:Signature", NS)
    # 1. the genuine signature pasted onto forged content
    f = etree.fromstring(forged.encode())
    f.append(sig)
    with pytest.raises(CapSignatureError):
        signing.verify(etree.tostring(f), trusted=[signer.cert_pem])
    # 2. the genuine signed message tucked inside the forged one's signature (a wrapping attack)
    f = etree.fromstring(forged.encode())
    wrapped = etree.fromstring(signed.encode())
    s = wrapped.find("ds:Signature", NS)
    obj = etree.SubElement(s, f"{{{signing.DS_NS}}}Object")
    genuine = etree.fromstring(signed.encode())
    genuine.remove(genuine.find("ds:Signature", NS))
    obj.append(genuine)
    f.append(s)
    with pytest.raises(CapSignatureError):
        signing.verify(etree.tostring(f), trusted=[signer.cert_pem])
    # 3. the signature moved inside an <info>, or two of them
    g = etree.fromstring(signed.encode())
    s = g.find("ds:Signature", NS)
    g.find("c:info", NS).append(s)
    with pytest.raises(CapSignatureError, match="direct child"):
        signing.verify(etree.tostring(g), trusted=[signer.cert_pem])
    g = etree.fromstring(signed.encode())
    g.append(etree.fromstring(etree.tostring(g.find("ds:Signature", NS))))
    with pytest.raises(CapSignatureError, match="exactly one"):
        signing.verify(etree.tostring(g), trusted=[signer.cert_pem])
    # 4. a Reference to part of the document instead of all of it
    part = signed.replace('<ds:Reference URI="">', '<ds:Reference URI="#x">')
    with pytest.raises(CapSignatureError, match='URI=""'):
        signing.verify(part, trusted=[signer.cert_pem])


def test_hostile_and_malformed_xml_is_refused_safely(signer, tmp_path):
    for f in ("google-xee.cap",):
        with pytest.raises(CapSignatureError, match="DOCTYPE or ENTITY"):
            signing.verify((SHARED_CAP / "invalid" / f).read_bytes(), trusted=[signer.cert_pem])
    laughs = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
              '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&b;</alert>')
    with pytest.raises(CapSignatureError, match="DOCTYPE"):
        signing.verify(laughs, trusted=[signer.cert_pem])
    with pytest.raises(CapSignatureError, match="not well-formed"):
        signing.verify(b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>", trusted=[signer.cert_pem])
    with pytest.raises(CapSignatureError, match="not a CAP 1.2 <alert>"):
        signing.verify(b"<html/>", trusted=[signer.cert_pem])
    # a real, valid but unsigned message from another agency
    with pytest.raises(CapSignatureError, match="unsigned"):
        signing.verify((SHARED_CAP / "valid" / "cn-baoding-update.xml").read_bytes(), trusted=[signer.cert_pem])


def test_self_signed_pair_is_made_once_and_configured_pairs_are_checked(tmp_path):
    var = tmp_path / "var"
    first = signing.load_signer(key=None, cert=None, var_dir=var)
    key_file = var / signing.SELF_SIGNED_DIR / signing.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = signing.load_signer(key=None, cert=None, var_dir=var)
    assert again.cert_pem == first.cert_pem and again.key_pem == first.key_pem
    cert_file = var / signing.SELF_SIGNED_DIR / signing.CERT_FILE
    configured = signing.load_signer(key=key_file, cert=cert_file, var_dir=tmp_path / "unused")
    assert configured.cert_pem == first.cert_pem and not (tmp_path / "unused").exists()
    with pytest.raises(CapSignatureError, match="cap_signing_cert"):
        signing.load_signer(key=key_file, cert=None, var_dir=var)
    other_key, _ = signing.generate_self_signed(tmp_path / "other")
    with pytest.raises(CapSignatureError, match="does not belong"):
        signing.load_signer(key=other_key, cert=cert_file, var_dir=var)
    with pytest.raises(CapSignatureError, match="cap_signing_key"):
        signing.load_signer(key=tmp_path / "missing.pem", cert=cert_file, var_dir=var)


# ------------------------------------------------------------------------------------- yzt cap verify


def _cli(capsys, *argv):
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def test_cli_verify_exit_status_and_one_line(capsys, tmp_path, monkeypatch, area):
    from settings import reset_settings_cache
    var = tmp_path / "var"
    monkeypatch.setenv("YZT_VAR_DIR", str(var))
    reset_settings_cache()
    try:
        code, _, err = _cli(capsys, "cap", "verify", str(SHARED_CAP / "valid" / "us.xml"))
        assert code == 2 and "no trusted certificate" in err and len(err.strip().splitlines()) == 1
        ours = signing.load_signer(key=None, cert=None, var_dir=var)   # what the service signs with
        good = tmp_path / "good.xml"
        good.write_text(build(area, ours), encoding="utf-8")
        code, out, err = _cli(capsys, "cap", "verify", str(good))
        assert code == 0, err
        assert signing.SELF_SIGNED_CN in out and "44010612300000_20260314091200_0" in out
        code, out, err = _cli(capsys, "cap", "verify", str(good), "--json")
        assert code == 0 and '"verified": true' in out
        text = good.read_text(encoding="utf-8")
        bad = tmp_path / "bad.xml"
        bad.write_text(text.replace("请向东侧疏散", "请向西侧疏散", 1), encoding="utf-8")   # one character
        for f, why in ((bad, "changed after signing"),
                       (SHARED_CAP / "valid" / "cn-baoding-update.xml", "unsigned"),
                       (SHARED_CAP / "invalid" / "google-xee.cap", "DOCTYPE"),
                       (tmp_path / "nope.xml", "no such file")):
            code, out, err = _cli(capsys, "cap", "verify", str(f))
            assert code == 2 and why in err and len(err.strip().splitlines()) == 1 and out == "", (f, err)
        # --cert: a receiver trusting another certificate refuses our message
        other = tmp_path / "other"
        _, other_cert = signing.generate_self_signed(other)
        code, _, err = _cli(capsys, "cap", "verify", str(good), "--cert", str(other_cert))
        assert code == 2 and "does not verify" in err
    finally:
        reset_settings_cache()


def _load_cert_in_child(var_dir: str, out) -> None:
    out.put(signing.load_signer(key=None, cert=None, var_dir=Path(var_dir)).cert_pem)


def test_processes_starting_together_sign_with_one_self_signed_pair(tmp_path):
    """Web workers and the delivery process start at once: they must not each make (and keep) their own key."""
    import multiprocessing
    mp = multiprocessing.get_context("fork")
    out = mp.Queue()
    procs = [mp.Process(target=_load_cert_in_child, args=(str(tmp_path / "var"), out)) for _ in range(4)]
    for p in procs:
        p.start()
    certs = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    on_disk = (tmp_path / "var" / signing.SELF_SIGNED_DIR / signing.CERT_FILE).read_bytes()
    assert all(c == on_disk for c in certs)
    assert not [p for p in (tmp_path / "var").iterdir() if p.name.startswith(".")]     # no leftovers
