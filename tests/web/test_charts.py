"""Chart geometry: bars scaled into their box, a round scale, nothing drawn for no data."""

from board.web.charts import _nice, columns, rows


def test_scale_is_round_and_bars_fit_the_box() -> None:
    assert [_nice(v) for v in (0, 3, 10, 11, 170, 885)] == [1.0, 5.0, 10.0, 20.0, 200.0, 1000.0]
    c = columns([("a", 170, "/x"), ("b", None, ""), ("c", 85, "")], "t", width=340, height=240)
    assert c.top == 200.0
    a, b, third = c.bars
    assert a.height == 170 / 200 * (240 - 80) and b.height == 0 and third.height == a.height / 2
    assert a.y + a.height == 240 - 40  # standing on the axis
    assert all(bar.x >= 40 and bar.x + bar.width <= 300 for bar in c.bars)
    r = rows([("75 Pct", 25.7, ""), ("120 Pct", 51.4, "")], "t", width=500)
    assert r.bars[1].width == 51.4 / 100 * (500 - 110 - 90) and r.height == 40 + 2 * 26


def test_no_data_bars_are_words_not_links_and_linked_charts_are_groups() -> None:
    r = rows([("75 Pct", 25.7, "/a"), ("120 Pct", None, "/b")], "t")
    known, unknown = r.bars
    assert known.href == "/a" and known.shown == "25.7"
    assert (unknown.href, unknown.known, unknown.shown) == ("", False, "no data")
    assert r.linked
    assert not columns([("a", 3, ""), ("b", None, "")], "t").linked
    assert columns([("a", 3.0, "/x")], "t").bars[0].shown == "3"
