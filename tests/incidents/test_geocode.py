"""The offline geocoder on the bundled gazetteer: addresses as callers say them, points in any datum."""
from __future__ import annotations

import json

import pytest

from incidents import coords
from incidents.errors import LocateError
from incidents.geocode import locate, locate_any, locate_batch, locate_point, normalise
from incidents.model import Point


def test_gas_explosion_report_is_located_to_its_district():
    loc = locate("广州市天河区天河路 商场燃气爆炸 3人重伤")
    assert loc.district_adcode == "440106" and loc.city_adcode == "440100"
    assert loc.precision == "district" and loc.source == "offline" and loc.point.crs == "wgs84"
    assert any("天河路" in n and "not in the road data" in n for n in loc.notes)
    assert loc.confidence < 0.85          # the road was named but only the district could be placed


def test_futian_road_gives_road_precision():
    loc = locate("深圳市福田区景田路")
    assert loc.precision == "road" and loc.district_adcode == "440304"
    assert loc.matched.endswith("景田路")
    # the road's midpoint lies in the graph's bbox (southern Futian)
    assert 113.997 <= loc.point.lon <= 114.040 and 22.516 <= loc.point.lat <= 22.551


def test_township_is_placed_at_its_own_point_with_an_uncertainty():
    loc = locate("广州市荔湾区沙面街道")
    assert loc.matched_level == "township" and "沙面街道" in loc.matched
    assert loc.precision == "township" and loc.district_adcode == "440103"
    # Vonng/adcode's point of 440103001 (GCJ-02 113.2483,23.107235 converted to WGS84)
    assert abs(loc.point.lon - 113.242977) < 1e-6 and abs(loc.point.lat - 23.109923) < 1e-6
    district = locate("广州市荔湾区")
    assert 0 < loc.uncertainty_m < district.uncertainty_m


def test_issue_addresses_no_longer_land_on_the_city_or_district_centre():
    dongguan, humen = locate("东莞市"), locate("东莞市虎门镇")
    assert humen.precision == "township" and humen.district_adcode == "441900"
    assert (humen.point.lon, humen.point.lat) != (dongguan.point.lon, dongguan.point.lat)
    dashi = locate("广州市番禺区大石街道")
    assert dashi.precision == "township" and dashi.district_adcode == "440113"
    assert dashi.point != locate("广州市番禺区").point


def test_a_township_without_a_point_says_so_and_falls_back_to_its_district():
    loc = locate("广州市白云区龙归街道")        # created after the 2016 point sources: no point
    assert loc.matched_level == "township" and loc.precision == "district"
    assert loc.point == locate("广州市白云区").point
    assert loc.uncertainty_m == locate("广州市白云区").uncertainty_m
    assert any("no coordinates" in n for n in loc.notes)


def test_community_with_a_point_gets_community_precision():
    loc = locate("广州市荔湾区泰华社区")          # 440103004103 in Vonng/adcode
    assert loc.matched_level == "community" and loc.precision == "community"
    assert abs(loc.point.lon - 113.23475) < 1e-6 and abs(loc.point.lat - 23.117928) < 1e-6
    assert loc.uncertainty_m < locate("广州市荔湾区").uncertainty_m


def test_community_without_a_point_takes_its_townships():
    loc = locate("翠洲社区3栋")          # 翠洲社区居民委员会 in the NBS list, no point of its own
    assert loc.matched_level == "community" and loc.precision == "township"
    assert loc.district_adcode == "440103" and "翠洲社区" in loc.matched
    assert loc.point == locate("广州市荔湾区沙面街道").point
    assert any("its township's centre" in n for n in loc.notes)


def test_geonames_place_that_is_not_a_township():
    loc = locate("梅州市大埔县双溪镇")          # an old town, merged away; GeoNames still names it
    assert loc.precision == "place" and loc.district_adcode == "441422"
    assert loc.uncertainty_m > 0


def test_village_committee_is_said_as_its_village():
    # 永兴村委会 -> 永兴村; the name exists in several districts, the district given picks one
    many = locate("永兴村")
    assert len(many.candidates) > 1
    pick = many.candidates[-1]
    one = locate(f"{pick.name}")
    assert one.district_adcode == pick.district_adcode and len(one.candidates) == 1


def test_shared_name_gives_both_candidates_and_the_city_resolves_it():
    loc = locate("东涌镇")                # 广州市南沙区东涌镇 and 汕尾市城区东涌镇
    assert {c.district_adcode for c in loc.candidates} == {"440115", "441502"}
    assert loc.confidence < 0.6 and any("may mean 2 places" in n for n in loc.notes)
    assert locate("汕尾市东涌镇").district_adcode == "441502"
    assert locate("广州东涌镇").district_adcode == "440115"
    assert len(locate("广州市东涌镇").candidates) == 1


def test_short_district_name_and_province_prefix():
    full, short = locate("广东省广州市天河区"), locate("广东天河")
    assert full.district_adcode == short.district_adcode == "440106"
    assert short.confidence < full.confidence


def test_full_width_digits_letters_and_house_numbers():
    loc = locate("广州市海珠区新港中路３８５号Ａ栋１２楼")
    assert loc.district_adcode == "440105"
    assert normalise("３８５号 Ａ栋") == "385号A栋"


def test_dongguan_has_no_districts_its_towns_still_resolve():
    assert locate("东莞市").district_adcode == "441900"
    loc = locate("东莞市长安镇")
    assert loc.district_adcode == "441900" and loc.matched_level == "township"


def test_university_of_macau_campus_is_its_own_unit():
    assert locate("珠海市澳门大学横琴校区").district_adcode == "440499"


def test_a_short_name_inside_a_road_name_is_not_a_place():
    # 北京路 is a road in Guangzhou, not Beijing; 中山大道 is not Zhongshan city
    with pytest.raises(LocateError, match="no Guangdong place"):
        locate("北京路")
    assert locate("广州市天河区中山大道西").district_adcode == "440106"


@pytest.mark.parametrize("text, named", [("北京市朝阳区建国路88号", "北京市"), ("香港", "香港"),
                                         ("湖南省长沙市岳麓区", "湖南省")])
def test_outside_guangdong_is_refused(text, named):
    with pytest.raises(LocateError, match="outside Guangdong") as e:
        locate(text)
    assert named in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["", "   ", "着火了快来人", "12345"])
def test_nothing_recognised_is_refused(text):
    with pytest.raises(LocateError):
        locate(text)


def test_confidence_and_candidates_are_sane():
    for text in ("广州市天河区", "东涌镇", "天河", "深圳市福田区景田路", "广州市"):
        loc = locate(text)
        assert 0 < loc.confidence <= 1
        assert loc.candidates and loc.candidates[0].district_adcode == loc.district_adcode
    assert locate("广州市").precision == "city" and locate("广州市").district_adcode is None


# ------------------------------------------------------------------------------------------ reverse
def test_reverse_of_a_tianhe_point():
    loc = locate_point(Point(113.3245, 23.1190, "wgs84"))      # 珠江新城
    assert loc.district_adcode == "440106" and loc.city_adcode == "440100" and loc.precision == "point"
    assert loc.uncertainty_m == 0


def test_reverse_names_the_nearest_township_of_its_district_labelled_approximate():
    sha_mian = locate("广州市荔湾区沙面街道")
    loc = locate_point(sha_mian.point)
    assert loc.township["name"] == "沙面街道" and loc.township["approximate"] is True
    assert loc.township["distance_m"] == 0
    assert any("approximate" in n for n in loc.notes)
    assert loc.as_dict()["township"]["code"] == "440103001"


def test_reverse_converts_the_datum_first():
    w = Point(113.3245, 23.1190, "wgs84")
    bd = coords.convert(w, "bd09")
    loc = locate_point(bd)
    assert loc.district_adcode == "440106" and loc.input_point == bd
    assert abs(loc.point.lon - w.lon) < 1e-6 and abs(loc.point.lat - w.lat) < 1e-6


def test_a_point_in_hong_kong_is_refused():
    with pytest.raises(LocateError, match="outside Guangdong"):
        locate_point(Point(114.1694, 22.3193, "wgs84"))       # Kowloon


def test_locate_any_point_wins_and_address_adds_names():
    loc = locate_any("深圳市福田区景田路", Point(113.3245, 23.1190))
    assert loc.district_adcode == "440106"
    assert any("the point is used" in n for n in loc.notes)
    assert locate_any("广州市天河区", None).district_adcode == "440106"
    with pytest.raises(LocateError):
        locate_any(None, None)


def test_batch_keeps_order_and_goes_on_after_a_refusal():
    out = list(locate_batch(["广州市天河区", "北京市朝阳区", "", "深圳市福田区景田路"]))
    assert [("error" in d) for d in out] == [False, True, True, False]
    assert out[0]["district_adcode"] == "440106" and out[3]["precision"] == "road"
    json.dumps(out, ensure_ascii=False)


def test_metro_line_and_estate_names_are_not_places():
    # real Baidu POI address lines: 龙岗线 is a metro line, 珠江新城 a Tianhe neighbourhood, not 南沙's 珠江街道
    loc = locate("深圳市深圳地铁 三号线 龙岗线 地铁草埔站 3")
    assert loc.precision == "city" and loc.city_adcode == "440300" and loc.district_adcode is None
    assert locate("广州市地铁珠江新城站").district_adcode != "440115"


def test_common_short_form_of_an_autonomous_county():
    assert locate("韶关市乳源县 山体滑坡 5人失踪").district_adcode == "440232"
    assert locate("乳源县").confidence == locate("乳源瑶族自治县").confidence


def test_a_district_name_that_is_an_everyday_word_counts_only_after_its_city():
    assert locate("汕尾市城区").district_adcode == "441502"
    with pytest.raises(LocateError):
        locate("长沙市望城区金山桥街道")        # 望城区 contains 城区; Changsha is not in Guangdong


def test_a_short_town_name_before_district_is_another_unit():
    with pytest.raises(LocateError):
        locate("贵阳市云岩区")                   # not 乐昌市云岩镇


def test_batch_answers_repeated_lines_once_and_hands_out_copies():
    out = list(locate_batch(["广州市天河区", "广州市 天河区", "广州市天河区"]))
    assert out[0] == out[1] == out[2]
    out[0]["candidates"].clear()
    assert out[1]["candidates"]


def test_a_districts_uncertainty_circle_covers_all_of_it():
    import numpy as np
    from pyproj import Transformer
    from incidents import admin
    from incidents.gazetteer import gazetteer
    g = gazetteer()
    tf = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    d = admin.districts().to_crs("EPSG:4547")
    for code, geom in zip(d.district_adcode, d.geometry):
        p = g.district(code)
        x, y = tf.transform(p.lon, p.lat)
        xs, ys = np.asarray(geom.exterior.coords if geom.geom_type == "Polygon"
                            else [c for part in geom.geoms for c in part.exterior.coords]).T
        assert np.hypot(xs - x, ys - y).max() <= p.uncertainty_m + 1, code


@pytest.mark.parametrize("text", ["广州市荔湾区沙面街道", "东莞市虎门镇", "广州市荔湾区泰华社区", "梅州市大埔县双溪镇"])
def test_finer_places_are_less_uncertain_than_their_district(text):
    loc = locate(text)
    assert 0 < loc.uncertainty_m < locate(loc.candidates[0].name[:0] + (loc.city_name or "") +
                                          (loc.district_name if loc.district_name != loc.city_name else "")
                                          ).uncertainty_m


def test_traditional_characters_read_as_simplified_but_official_names_are_kept():
    assert normalise("廣州市天河區") == "广州市天河区"
    assert locate("廣東省廣州市天河區").district_adcode == "440106"
    assert locate("珠海市斗门区乾务镇").matched_level == "township"      # 乾 is the official simplified form here
