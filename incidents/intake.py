"""Reading a caller's words: what happened, to how many, where, and the grade these give.

    from incidents.intake import read, read_batch
    r = read("广州市天河区体育西路191号 写字楼火灾 5人被困")
    r.type, r.casualties.trapped, r.place      # "fire", 5, "广州市天河区体育西路191号"
    r.as_dict()                                # the `yzt intake --json` shape of cli.md
    for d in read_batch(lines): ...            # one dict per line; a refused line gives {"error": ...}
                                               # (a chunk's places located together: incidents._batch)

What is read, and how:
- **type**: the catalogue's names, aliases and ``words`` (one Aho-Corasick automaton over them) (data/grading/incident_types.yaml: 起火/着火/失火 -> fire,
  燃气爆炸 -> gas_explosion, 追尾/相撞/翻车 -> traffic, 食物中毒 -> public_health ...), found leftmost-longest.
  When a text says several, the type with the highest ``priority`` wins (a cause above its consequence:
  "货车追尾后起火" is traffic), then the first said; ``refines`` turns 爆炸 + 燃气 into gas_explosion.
- **counts**: deaths, serious injuries, other injured, missing, trapped, in Arabic or Chinese numerals (两, 十二,
  一百零五), as "3人死亡", "死亡3人", "死亡人数升至8人", "3死5伤", "发现2具遗体". "十余/20余/20多/逾/超过/数十/上百"
  give the lower bound, "近百/约" the figure said, and either is flagged in ``approximate``. "10人受伤，其中4人
  重伤" gives 4 serious and 6 other injured; "10人伤亡，其中3人死亡" gives 3 deaths and 7 injured. "无人员伤亡"
  gives 0. Where a figure is said several times (an update), the largest is kept. Anything the text does not
  say stays None: never 0 by default.
- **place**: the words from the first Guangdong (or other province's) name the gazetteer knows to the first
  word that is not part of an address (the incident words, 发生, 附近, a count); located with incidents.geocode.
- **level**: incidents.grading.grade on the type and the counts given (unknown counts graded as 0, and said so);
  None when the type is unknown or has no national grading standard.

Nothing here reads settings: the caller passes ``data_dir``, ``missing_count_as_deaths`` and (for the online
geocoder) ``settings``.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ahocorasick_rs import AhoCorasick, MatchKind

from incidents import _batch, grading
from incidents.errors import GeocoderError, IncidentError, LocateError
from incidents.geocode import locate, locate_offline, normalise, t2s_table
from incidents.model import Casualties, Grade, Location

MAX_TEXT_CHARS = 2000          # a call's notes or a news paragraph; longer text is refused before it is read
FIELDS = ("deaths", "serious_injuries", "injured", "missing", "trapped")

# ------------------------------------------------------------------------------------------ numbers
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
# said -> (value, bound): "at_least" (the value is a lower bound) or "about" (the figure said, approximate)
_VAGUE = {"数十": (10, "at_least"), "几十": (10, "at_least"), "数百": (100, "at_least"), "几百": (100, "at_least"),
          "上百": (100, "at_least"), "近百": (100, "about"), "上千": (1000, "at_least"), "数千": (1000, "at_least"),
          "近千": (1000, "about")}
_AT_LEAST_PRE = ("超过", "逾", "至少", "不少于", "不低于")
_ABOUT_PRE = ("近", "约", "大约", "将近", "接近")


def cn_number(s: str) -> int:
    """Chinese numerals (一百零五, 十二, 两千三百, 3万) or Arabic digits -> int. Raises ValueError."""
    if s.isdigit():
        return int(s)
    total, section, digit = 0, 0, None
    for ch in s:
        if ch.isdigit():
            digit = (digit or 0) * 10 + int(ch)
        elif ch in _CN_DIGIT:
            digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            section += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
        elif ch == "万":
            total += (section + (digit or 0)) * 10_000
            section, digit = 0, None
        else:
            raise ValueError(f"not a number: {s!r}")
    return total + section + (digit or 0)


_NUM = (r"(?P<@pre>超过|逾|至少|不少于|不低于|将近|接近|大约|近|约)?"
        r"(?P<@num>\d+|数十|几十|数百|几百|上百|近百|上千|数千|近千|百|千"
        r"|[零〇一二两俩三四五六七八九十][零〇一二两三四五六七八九十百千万]*)"
        r"(?P<@post>余|多|来)?")
_CL = r"(?:人|名|位|例|口|个人)"
# between "3名" and "死亡": a short noun phrase (工人, 男子, 施工人员) and adverbs (当场, 经抢救无效), never
# punctuation, digits, another casualty word or a rescue verb ("30名消防员救出被困..." is not 30 trapped)
_GAP = r"(?:\d{1,3}岁|重伤者|伤者|伤员|(?!经抢救|抢救)[^\d，。；、,;:：！!？?\s()（）死亡伤困失踪遇难无未没救派赶调疏撤转和与及]){0,8}?" \
       r"(?:经抢救无效|抢救无效|因伤势过重|因伤重|不治)?后?"
_DEATH = r"死亡|遇难|身亡|罹难|丧生|殒命|丧命|去世|遇害|牺牲|不治"
_SERIOUS = r"重伤(?![者员])|伤势严重|伤势较重|伤势危重|伤情严重|伤情较重|伤情危重|情况严重|危重|病危|重度烧伤"
_NOT_DEAD_LATER = r"(?![^，。；,;]{0,10}(?:死亡|身亡|不治|遇难))"
_INJURED = (r"(?:不同程度受伤|受轻伤|轻微伤|轻伤|受伤|负伤|[烧烫砸摔撞割炸刺划咬压]伤(?![者员])|中毒(?!者)"
            r"|送(?:往|入|至|到)?(?:医院|医)|送院|入院|就医|住院|就诊|伤(?![亡者员势情]))" + _NOT_DEAD_LATER)
_MISSING = r"失踪|下落不明|失联"
_TRAPPED = r"被困|受困|被埋|被压|困在|困于|被围困"
_CASUALTY = r"伤亡|死伤"
_KINDS = (("casualties", _CASUALTY), ("deaths", _DEATH), ("serious_injuries", _SERIOUS), ("injured", _INJURED),
          ("missing", _MISSING), ("trapped", _TRAPPED))
_VERB = "|".join(f"(?P<@{k}>{v})" for k, v in _KINDS)
_LINK = r"(?:人数|人员|者|群众)?(?:已|共|共计|总计)?(?:为|达到|达|升至|上升至|上升到|增至|增加至|增加到|增到|已达|约有|有)?"
_AFTER_NUM = rf"(?:{_CL}|(?=[，。；、,;\s)）]|$))"

_PATTERNS = [
    # 3人死亡, 3名工人经抢救无效死亡, 十余人受伤
    ("n_verb", _NUM.replace("@", "a") + _CL + _GAP + "(?:" + _VERB.replace("@", "a") + ")"),
    # 死亡3人, 受伤人数增至10人, 被困人员约30人
    ("verb_n", "(?:" + _VERB.replace("@", "b") + ")" + _LINK + _NUM.replace("@", "b") + _AFTER_NUM),
    # 3死5伤, 一死两伤
    ("short", _NUM.replace("@", "c") + r"(?P<cshort>死|伤|亡)(?![亡者伤])"),
    # 发现2具遗体
    ("bodies", _NUM.replace("@", "d") + r"具(?:遗体|尸体)"),
]
# Each pattern begins with the lookahead of the characters a match can begin with: the regex engine then passes
# over every other position at once instead of trying each alternative there (2-3x faster on a call's text).
_COUNT_FIRST = (r"\d超逾至不将接大近约数几上百千零〇一二两俩三四五六七八九十"     # a number, or words before it
                r"伤死遇身罹丧殒去牺重情危病受轻负烧烫砸摔撞割炸刺划咬压中送入就住失下被困")   # a casualty word
_COUNT_RE = re.compile(f"(?=[{_COUNT_FIRST}])(?:" + "|".join(f"(?P<{name}>{pat})" for name, pat in _PATTERNS) + ")")
_ZERO_RE = re.compile(r"(?:无|没有|没有造成|没造成|没有发现|未造成|未有|暂无|未发现|暂未发现|未见|并无|无一|未致|未出现)"
                      r"(?:任何)?(?:人员|人)?(?P<what>伤亡|死亡|受伤|被困|失踪|失联)")
# one person said without a number: "司机当场死亡", "一名男子被困" is handled by the numeral patterns
_ONE_RE = re.compile(r"(?=[司驾男女老孕车户屋店伤死工骑])(?<![\d两二三四五六七八九十百千多数几名位人])(?:司机|驾驶员|驾驶人|男子|女子|老人|男童|女童|女孩|男孩|"
                     r"孕妇|车主|户主|屋主|店主|伤者|死者|工人|骑手)"
                     r"(?:当场|不幸|经抢救无效|抢救无效|已|因伤势过重|被困车内)?"
                     r"(?P<what>死亡|身亡|遇难|被困|失踪|受伤|重伤)")
_PARTIAL = re.compile("当场|现场|抢救无效|送医后|送院后|不治|另|此外|还有|跳楼|在火灾中")
_SOME_RE = re.compile(r"(?:多人|数人|若干人|几人|有人|人员)(?:员)?(?P<what>死亡|受伤|被困|失踪|伤亡)")
_WITHIN = ("其中", "含", "包括")
_DIED_AFTER = re.compile(r"[^，。；,;、\d]{0,8}?(?:不幸|已|均|全部)?(?:身亡|死亡|遇难)")


@dataclass
class _Count:
    value: int
    said: str
    bound: str | None       # None (exact), "at_least" or "about"
    start: int
    partial: bool = False   # one part of a figure said in parts (当场 / 抢救无效 / 另有 ...)


def _number(m: re.Match, p: str) -> tuple[int, str, str | None] | None:
    num = m.group(f"{p}num")
    pre, post = m.group(f"{p}pre"), m.group(f"{p}post")
    said = (pre or "") + num + (post or "")
    bound = None
    if num in _VAGUE:
        value, bound = _VAGUE[num]
    else:
        try:
            value = cn_number(num)
        except ValueError:
            return None
    if pre in _AT_LEAST_PRE or post in ("余", "多"):
        bound = "at_least"
    elif pre in _ABOUT_PRE or post == "来":
        bound = bound or "about"
    return value, said, bound


# ------------------------------------------------------------------------------------------ result
@dataclass(frozen=True)
class Counts:
    """What the text says of each count: an int, or None where it says nothing."""

    deaths: int | None = None
    serious_injuries: int | None = None
    injured: int | None = None            # injured other than seriously
    missing: int | None = None
    trapped: int | None = None

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in FIELDS}

    def for_grading(self) -> Casualties:
        """Unknown counts as 0: what grading can do with what was said (the reading says which were unknown)."""
        return Casualties(deaths=self.deaths or 0, serious_injuries=self.serious_injuries or 0,
                          missing=self.missing or 0)


@dataclass(frozen=True)
class Reading:
    """What a caller's words say."""

    text: str
    type: str | None
    type_words: tuple[str, ...]             # the words that gave the type, in the order said
    casualties: Counts
    approximate: dict[str, dict]            # field -> {"said": "十余", "bound": "at_least" | "about"}
    place: str | None
    location: Location | None
    grade: Grade | None
    notes: tuple[str, ...] = field(default=())

    @property
    def level(self) -> str | None:
        return self.grade.level if self.grade else None

    def as_dict(self) -> dict:
        """The ``yzt intake --json`` shape (cli.md), plus what supports it."""
        return {
            "type": self.type,
            "casualties": self.casualties.as_dict(),
            "place": self.place,
            "location": self.location.as_dict() if self.location else None,
            "level": self.level,
            "grade": _grade_dict(self.grade) if self.grade else None,
            "type_words": list(self.type_words),
            "approximate": self.approximate,
            "unknown": [f for f in FIELDS if getattr(self.casualties, f) is None],
            "notes": list(self.notes),
        }


@functools.lru_cache(maxsize=1024)
def _grade_template(g: Grade) -> dict:
    return g.as_dict()


def _grade_dict(g: Grade) -> dict:
    """``g.as_dict()``, from a copy kept per grade (a batch grades the same few levels again and again: its
    dataclasses.asdict was a tenth of a batch's time)."""
    d = _grade_template(g)
    return {**d, "rule": dict(d["rule"])}


# ------------------------------------------------------------------------------------------ type
@dataclass(frozen=True)
class _Words:
    index: dict[str, str]
    priority: dict[str, int]
    refine: tuple[tuple[str, str, tuple[str, ...]], ...]     # (from type, to type, when words)
    no_standard: frozenset[str]
    stops: re.Pattern
    weak: frozenset[str] = frozenset()      # words that count only when no other type word is said
    names: tuple[str, ...] = ()             # the automaton's patterns: the words
    automaton: AhoCorasick | None = None    # leftmost-longest over ``names`` (ahocorasick-rs)


@functools.lru_cache(maxsize=4)
def _words(data_dir: Path | None) -> _Words:
    cat = grading.catalogue(data_dir)
    index = dict(cat.words)
    weak = dict(cat.weak_words)
    index.update({w: k for w, k in weak.items() if w not in index})
    refine = tuple((t.refines.type, k, t.refines.when) for k, t in cat.types.items() if t.refines)
    words = sorted(index, key=len, reverse=True)
    # the stop words, behind a lookahead of the characters they begin with (the engine skips other positions)
    first = "".join(sorted({re.escape(w[0]) for w in words if w}))
    stops = re.compile(rf"(?=[{first}发出突附周一门处有现凌清早上中下傍晚夜深今昨\d零二两三四五六七八九十])(?:"
                       + "|".join(map(re.escape, words))
                       + r"|发生|出现|突发|附近|周边|一带|门口|处有|有人|现场|凌晨|清晨|早上|上午|中午|下午|傍晚|晚上|夜间|深夜|今晨|昨晚|一(?![路街巷号期横马村区环楼层单元])|\d+(?:人|名)|"
                       + r"[零一二两三四五六七八九十]+(?:人|名)|\d+(?:时|点|日|月|年))")
    names = tuple(w for w in index if w)
    return _Words(index, {k: t.priority for k, t in cat.types.items()}, refine,
                  frozenset(k for k, t in cat.types.items() if t.table is None), stops, frozenset(weak),
                  names, AhoCorasick(list(names), matchkind=MatchKind.LeftmostLongest) if names else None)


def _scan_words(text: str, w: _Words) -> list[tuple[int, str, str]]:
    """Leftmost-longest catalogue words: (start, word, type), in one pass of the words' automaton."""
    if w.automaton is None:
        return []
    names, index = w.names, w.index
    return [(s, names[i], index[names[i]]) for i, s, _ in w.automaton.find_matches_as_indexes(text)]


def read_type(text: str, *, data_dir: Path | None = None) -> tuple[str | None, tuple[str, ...]]:
    """The incident type the words say (or None), and the words that said it."""
    w = _words(data_dir)
    found = _scan_words(text, w)
    strong = [f for f in found if f[1] not in w.weak]
    found = strong or found
    if not found:
        return None, ()
    best: dict[str, int] = {}
    for start, _, key in found:
        best.setdefault(key, start)
    key = min(best, key=lambda k: (-w.priority.get(k, 0), best[k]))
    for src, dst, when in w.refine:
        if key == src and any(x in text for x in when):
            key = dst
            break
    return key, tuple(word for _, word, k in found if k == key) or tuple(word for _, word, _ in found)


# ------------------------------------------------------------------------------------------ counts
def read_counts(text: str) -> tuple[Counts, dict[str, dict], list[str]]:
    """Counts the words give, what of them is approximate, and notes (e.g. "有人被困": a count not given)."""
    found: dict[str, list[_Count]] = {k: [] for k, _ in _KINDS}
    order: list[tuple[str, _Count, int]] = []           # every mention in text order: (kind, count, end)
    for m in _COUNT_RE.finditer(text):
        kind = m.lastgroup
        if kind == "n_verb" or kind == "verb_n":
            p = "a" if kind == "n_verb" else "b"
            what = next(k for k, _ in _KINDS if m.group(p + k))
        elif kind == "short":
            p, what = "c", ("deaths" if m.group("cshort") in "死亡" else "injured")
        else:
            p, what = "d", "deaths"
        num = _number(m, p)
        if num is None:
            continue
        value, said, bound = num
        c = _Count(value, said, bound, m.start())
        c.partial = _PARTIAL.search(text, max(0, m.start() - 4), m.end()) is not None
        found[what].append(c)
        order.append((what, c, m.end()))
        if what in ("trapped", "missing") and _DIED_AFTER.match(text, m.end()):
            found["deaths"].append(_Count(value, said, bound, m.start()))     # "两名儿童被困车内不幸身亡"
    out: dict[str, int | None] = {f: None for f in FIELDS}
    approx: dict[str, dict] = {}
    notes: list[str] = []

    def best(kind: str) -> _Count | None:
        cs = found[kind]
        return max(cs, key=lambda c: c.value) if cs else None

    def keep(f: str, c: _Count | None) -> None:
        if c is not None:
            out[f] = c.value
            if c.bound:
                approx[f] = {"said": c.said, "bound": c.bound}

    for f in ("deaths", "serious_injuries", "missing", "trapped"):
        keep(f, best(f))
    # "1人当场死亡，1人抢救无效死亡": parts said one after another add up (never below the largest figure said)
    parts = [c for c in found["deaths"] if c.partial]
    if len(parts) > 1 and sum(c.value for c in parts) > (out["deaths"] or 0):
        out["deaths"] = sum(c.value for c in parts)
    inj = best("injured")
    keep("injured", inj)
    if inj is not None:
        ser = best("serious_injuries")
        if ser is not None and _is_within(text, inj.start, ser.start) and ser.value <= inj.value:
            out["injured"] = inj.value - ser.value      # "10人受伤，其中4人重伤"
        # "受伤4人，其中1人经抢救无效死亡": the one who died is no longer among the injured
        for i, (kind, c, _) in enumerate(order):
            if kind != "deaths" or i == 0:
                continue
            prev_kind, prev, prev_end = order[i - 1]
            if prev_kind == "injured" and prev is inj and "其中" in text[prev_end:c.start] \
                    and out["injured"] is not None and c.value <= out["injured"]:
                out["injured"] -= c.value
    total = best("casualties")
    if total is not None:
        known = sum(out[f] or 0 for f in ("deaths", "serious_injuries", "injured"))
        if out["injured"] is None and out["deaths"] is not None and out["deaths"] <= total.value:
            out["injured"] = total.value - out["deaths"] - (out["serious_injuries"] or 0)
            if total.bound:
                approx["injured"] = {"said": total.said, "bound": total.bound}
        elif known == 0 and out["deaths"] is None:
            notes.append(f"{total.said}人伤亡: dead and injured together, not split")
    for m in _ONE_RE.finditer(text):
        f = {"死亡": "deaths", "身亡": "deaths", "遇难": "deaths", "被困": "trapped", "失踪": "missing",
             "受伤": "injured", "重伤": "serious_injuries"}[m.group("what")]
        if out[f] is None:
            out[f] = 1
    for m in _ZERO_RE.finditer(text):
        what = m.group("what")
        targets = {"伤亡": ("deaths", "serious_injuries", "injured"), "死亡": ("deaths",),
                   "受伤": ("injured", "serious_injuries"), "被困": ("trapped",),
                   "失踪": ("missing",), "失联": ("missing",)}[what]
        for f in targets:
            if out[f] is None:
                out[f] = 0
    for m in _SOME_RE.finditer(text):
        what = m.group("what")
        f = {"死亡": "deaths", "受伤": "injured", "被困": "trapped", "失踪": "missing", "伤亡": "injured"}[what]
        if out[f] is None:
            notes.append(f"{m.group(0)}: said, but no count given ({f} unknown)")
    counts = Counts(**out)
    return counts, approx, notes


def _is_within(text: str, total_at: int, part_at: int) -> bool:
    """True when the part (重伤) is said after the total (受伤) with 其中/含/包括 between them."""
    if part_at <= total_at:
        return False
    between = text[total_at:part_at]
    return any(w in between for w in _WITHIN)


# ------------------------------------------------------------------------------------------ place
_SPACES = re.compile(r"\s+")
_BREAK = re.compile(r"[，。；！？!?;,、()（）【】\[\]]")


def read_place(text: str, *, data_dir: Path | None = None) -> str | None:
    """The place words: from the first known place name of a clause to the first word that is not an address.

    The text is scanned once (NFKC, spaces read as clause breaks); a clause that names only the province is
    passed over for a later one that names more, and used only when none does."""
    found = _place(_SPACES.sub("，", unicodedata.normalize("NFKC", text).strip().translate(t2s_table())), data_dir)
    return found[0] if found else None


def _place(norm: str, data_dir: Path | None) -> tuple[str, list] | None:
    """(place words, the gazetteer's mentions inside them, offsets from the place's start) of a normalised text."""
    from incidents.gazetteer import Mention, gazetteer
    from incidents.geocode import _district_in_road_name, _usable
    g = gazetteer(data_dir)
    w = _words(data_dir)
    scanned = g.scan(norm)
    mentions = _usable(norm, scanned) or _district_in_road_name(norm, scanned)[0]
    fallback = None
    # start at a full name (广州市, 天河区) rather than a short one that may be a word's tail (中江高速 -> 江高)
    strong = [m for m in mentions if any(s for _, s in m.hits)]
    for m in strong or mentions:
        levels = {p.level for p, _ in m.hits}
        brk = _BREAK.search(norm, m.end)
        clause_end = brk.start() if brk else len(norm)
        stop = w.stops.search(norm, m.end, clause_end)
        place = norm[m.start:stop.start() if stop else clause_end].rstrip("的在于内里旁边处")
        if not place:
            continue
        a, b = m.start, m.start + len(place)
        inside = [Mention(x.start - a, x.end - a, x.alias, x.hits) for x in scanned if x.start >= a and x.end <= b]
        if levels - {"province"}:
            return place, inside
        fallback = fallback or (place, inside)
    return fallback


# ------------------------------------------------------------------------------------------ all together
@functools.lru_cache(maxsize=4096)
def _grade(type_: str, deaths: int, serious: int, missing: int, mcad: bool | None, data_dir: Path | None) -> Grade:
    return grading.grade(type_, Casualties(deaths=deaths, serious_injuries=serious, missing=missing),
                         missing_count_as_deaths=mcad, data_dir=data_dir)


def read(text: str, *, data_dir: Path | None = None, missing_count_as_deaths: bool | None = None,
         settings=None, client=None, _memo: dict | None = None) -> Reading:
    """Read one text (raises IncidentError for an empty or over-long text)."""
    said = _said(text, data_dir)
    location, note = None, None
    if said.place:
        hit = _memo.get(said.place) if _memo is not None else None
        if hit is None:
            try:
                if settings is None or not getattr(settings, "tianditu_key", None):   # the text is scanned once
                    hit = locate_offline(said.place, data_dir=data_dir, scanned=said.mentions)
                else:
                    hit = locate(said.place, settings=settings, client=client, data_dir=data_dir)
            except (LocateError, GeocoderError) as e:
                hit = e
            if _memo is not None and len(_memo) < 100_000:
                _memo[said.place] = hit
        if isinstance(hit, Exception):
            note = f"place not located: {hit}"
        else:
            location = hit
    return _reading(said, location, note, missing_count_as_deaths, data_dir)


@dataclass(frozen=True)
class _Said:
    """What a text says before its place is located."""

    text: str
    type: str | None
    words: tuple[str, ...]
    counts: Counts
    approx: dict[str, dict]
    notes: list[str]
    place: str | None
    mentions: list            # the gazetteer's mentions inside the place words (offsets from its start)


def _said(text: str, data_dir: Path | None) -> _Said:
    if not isinstance(text, str) or not text.strip():
        raise IncidentError("intake: the text is empty; give what the caller said")
    if len(text) > MAX_TEXT_CHARS:
        raise IncidentError(f"intake: {len(text)} characters is over the {MAX_TEXT_CHARS}-character limit")
    spaced = unicodedata.normalize("NFKC", text).strip().translate(t2s_table())   # 廣東/受傷 read as 广东/受伤
    norm = "".join(spaced.split())
    type_, words = read_type(norm, data_dir=data_dir)
    counts, approx, notes = read_counts(norm)
    found = _place(_SPACES.sub("，", spaced), data_dir)
    return _Said(text, type_, words, counts, approx, notes, found[0] if found else None,
                 found[1] if found else [])


def _reading(said: _Said, location: Location | None, note: str | None, missing_count_as_deaths: bool | None,
             data_dir: Path | None) -> Reading:
    """The Reading, given where its place was located (``note``: why it was not)."""
    notes = list(said.notes)
    if note:
        notes.append(note)
    elif not said.place:
        notes.append("no place name recognised in the text")
    g = None
    type_, counts = said.type, said.counts
    if type_ is None:
        notes.append("incident type not recognised: the level is unknown")
    elif type_ in _words(data_dir).no_standard:
        notes.append(f"{type_} has no national grading standard: the level is the officer's to set")
    else:
        c = counts.for_grading()
        g = _grade(type_, c.deaths, c.serious_injuries, c.missing, missing_count_as_deaths, data_dir)
        unknown = [f for f in ("deaths", "serious_injuries", "missing") if getattr(counts, f) is None]
        if unknown:
            notes.append(f"graded with {', '.join(unknown)} unknown (taken as 0): the level may rise")
    return Reading(text=said.text, type=type_, type_words=said.words, casualties=counts, approximate=said.approx,
                   place=said.place, location=location, grade=g, notes=tuple(notes))


def read_batch(lines: Iterable[str], **kwargs) -> Iterator[dict]:
    """One dict per line, in order: Reading.as_dict() or {"error": "..."}; a bad line never stops the batch.

    The place words of a batch repeat (one estate, one district, many calls): each is located once per batch.
    Offline, the lines are read a chunk at a time and the chunk's places located together by the geocoder's batch
    engine (incidents._batch), which gives each place's answer as its dict without the Location in between."""
    memo: dict = {}
    if kwargs.get("settings") is not None and getattr(kwargs["settings"], "tianditu_key", None):
        for line in lines:
            try:
                yield read(line, _memo=memo, **kwargs).as_dict()
            except IncidentError as e:
                yield {"error": str(e)}
        return
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= _batch.CHUNK:
            yield from _read_chunk(chunk, memo, kwargs.get("data_dir"), kwargs.get("missing_count_as_deaths"))
            chunk = []
    if chunk:
        yield from _read_chunk(chunk, memo, kwargs.get("data_dir"), kwargs.get("missing_count_as_deaths"))


def _read_chunk(lines: list[str], memo: dict, data_dir: Path | None, mcad: bool | None) -> list[dict]:
    """read(line).as_dict() for each line (or its error), the chunk's new places located in one call."""
    from incidents.gazetteer import gazetteer
    with _batch.collector_paused():
        said: list[_Said | IncidentError] = []
        todo: dict[str, list] = {}
        for line in lines:
            try:
                s = _said(line, data_dir)
            except IncidentError as e:
                said.append(e)
                continue
            said.append(s)
            if s.place and s.place not in memo and s.place not in todo:
                todo[s.place] = s.mentions
        places = list(todo)
        for place, hit in zip(places, _batch.locate_scanned(places, list(todo.values()), gazetteer(data_dir))):
            if len(memo) < 100_000:
                memo[place] = hit
            else:
                todo[place] = hit
        return [{"error": str(s)} if isinstance(s, IncidentError) else _said_dict(s, memo, todo, mcad, data_dir)
                for s in said]


def _said_dict(s: _Said, memo: dict, todo: dict, mcad: bool | None, data_dir: Path | None) -> dict:
    hit = (memo.get(s.place) or todo.get(s.place)) if s.place else None
    if isinstance(hit, Exception):
        return _reading(s, None, f"place not located: {hit}", mcad, data_dir).as_dict()
    d = _reading(s, None, None, mcad, data_dir).as_dict()
    if hit is not None:
        d["location"] = _batch.copy_answer(hit)
    return d
