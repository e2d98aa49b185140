"""Each reader on a tiny file written here, plus the MovieLens reader on the real folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import ReaderOptions, read_raw
from cllm4rec.data.readers.amazon import read_amazon_meta, review_text


def _flags(*genres: int) -> str:
    return "|".join("1" if g in genres else "0" for g in range(19))


@pytest.fixture
def tiny_movielens(tmp_path: Path) -> Path:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t5\t100\n2\t10\t3\t200\n10\t20\t4\t300\n")
    items = [
        f"10|Usual Suspects, The (1995)|14-Aug-1995||http://x|{_flags(6, 16)}",
        f"20|Caf\xe9 au Lait (1993)|01-Jan-1993||http://x|{_flags(5)}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n10|18|F|none|00000\n")
    (folder / "movie_wiki.csv").write_text(
        'movie_title,wiki_summary\n"Usual Suspects, The (1995)",A 1995 crime film.\n', encoding="utf-8"
    )
    return folder


def test_movielens_reader_fields(tiny_movielens: Path) -> None:
    raw = read_raw("movielens", tiny_movielens)
    assert raw.users == ["1", "2", "10"] and raw.items == ["10", "10", "20"]
    np.testing.assert_array_equal(raw.ratings, [5, 3, 4])
    np.testing.assert_array_equal(raw.timestamps, [100, 200, 300])
    assert raw.item_text["10"] == {
        "title": "The Usual Suspects",
        "year": "1995",
        "genres": "Crime, Thriller",
        "description": "A 1995 crime film.",
    }
    assert raw.item_text["20"] == {"title": "Caf\xe9 au Lait", "year": "1993", "genres": "Comedy"}
    assert raw.user_text == {
        "1": {"profile": "a 24-year-old male technician"},
        "2": {"profile": "a 53-year-old female"},
        "10": {"profile": "an 18-year-old female with no occupation"},
    }
    assert set(raw.source["files"]) == {"u.data", "u.item", "u.user", "movie_wiki.csv"}
    # the u.data file itself is accepted as input too
    assert read_raw("movielens", tiny_movielens / "u.data").users == raw.users


def test_movielens_reader_real(ml100k_dir: Path) -> None:
    raw = read_raw("movielens", ml100k_dir)
    assert len(raw) == 100_000 and len(raw.item_text) == 1681 and len(raw.user_text) == 943
    assert raw.item_text["1"]["title"] == "Toy Story"
    assert raw.item_text["1"]["genres"] == "Animation, Children's, Comedy"
    assert raw.item_text["12"]["title"] == "The Usual Suspects"
    assert sum("description" in f for f in raw.item_text.values()) == 1535  # 1,518 titles, some listed twice
    assert raw.user_text["1"] == {"profile": "a 24-year-old male technician"}


def _write_recbole(folder: Path, name: str = "tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\ti1\t5\t10\nu1\ti2\t2\t20\nu2\ti1\t4.5\t30\n"
    )
    (folder / f"{name}.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "i1\tShawshank Redemption, The\t1994\tDrama Film-Noir\ni2\tHeat\t1995\tAction\n"
    )
    (folder / f"{name}.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "u1\t30\tF\tengineer\t123\nu2\t81\tM\tretired\t456\n"
    )
    return folder


def test_recbole_reader_conventions(tmp_path: Path) -> None:
    folder = _write_recbole(tmp_path / "rb")
    raw = read_raw("recbole", folder)
    assert raw.users == ["u1", "u1", "u2"] and raw.items == ["i1", "i2", "i1"]
    np.testing.assert_array_equal(raw.ratings, [5, 2, 4.5])
    np.testing.assert_array_equal(raw.timestamps, [10, 20, 30])
    assert raw.reviews is None
    assert raw.item_text["i1"] == {
        "title": "The Shawshank Redemption",
        "year": "1994",
        "genres": "Drama, Film-Noir",
    }
    assert raw.user_text["u1"] == {"profile": "a 30-year-old female engineer"}
    assert raw.user_text["u2"] == {"profile": "an 81-year-old male who is retired"}
    assert raw.source["name"] == "tiny"
    assert read_raw("recbole", folder / "tiny.inter").users == raw.users


def test_recbole_reader_named_fields(tmp_path: Path) -> None:
    folder = _write_recbole(tmp_path / "rb")
    opts = ReaderOptions(item_text_fields=("movie_title", "class=tags"), user_text_fields=("gender", "zip_code"))
    raw = read_raw("recbole", folder, options=opts)
    assert raw.item_text["i2"] == {"title": "Heat", "tags": "Action"}
    assert raw.user_text["u1"] == {"profile": "a female", "zip_code": "123"}
    with pytest.raises(CLLM4RecError, match="no column 'plot'"):
        read_raw("recbole", folder, options=ReaderOptions(item_text_fields=("plot",)))


def test_recbole_reader_ambiguous_folder(tmp_path: Path) -> None:
    folder = _write_recbole(tmp_path / "rb", "a")
    _write_recbole(folder, "b")
    with pytest.raises(CLLM4RecError, match="several .inter files"):
        read_raw("recbole", folder)


def test_csv_reader_auto_columns(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text('userId,movieId,rating,timestamp,review\n1,10,4.0,100,"good, really"\n2,10,1,200,\n')
    raw = read_raw("csv", path)
    assert raw.users == ["1", "2"] and raw.items == ["10", "10"]
    np.testing.assert_array_equal(raw.ratings, [4, 1])
    np.testing.assert_array_equal(raw.timestamps, [100, 200])
    assert raw.reviews == ["good, really", ""]
    assert raw.source["delimiter"] == ","


def test_csv_reader_sniffs_tab_and_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_text("who\twhat\twhen\tstars\nalice\tbook\t2020-01-01T00:00:00\t5\nbob\tpen\t2020-01-02\t3\n")
    opts = ReaderOptions(user_col="who", item_col="what", time_col="when", rating_col="STARS")
    raw = read_raw("csv", path, options=opts)
    assert raw.source["delimiter"] == "\t"
    assert raw.users == ["alice", "bob"]
    np.testing.assert_array_equal(raw.timestamps, [1577836800, 1577923200])
    np.testing.assert_array_equal(raw.ratings, [5, 3])


def test_csv_reader_without_ratings(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("user;item\na;x\nb;y\n")
    raw = read_raw("csv", path, options=ReaderOptions(sep=";"))
    assert raw.ratings is None and raw.timestamps is None and raw.reviews is None
    assert raw.items == ["x", "y"]


_REVIEWS_2014 = [
    {
        "reviewerID": "U1",
        "asin": "A1",
        "reviewerName": "x",
        "helpful": [0, 0],
        "reviewText": "Works  &amp; sounds\n great.",
        "overall": 5.0,
        "summary": "Nice!",
        "unixReviewTime": 1393545600,
        "reviewTime": "02 28, 2014",
    },
    {
        "reviewerID": "U2",
        "asin": "A1",
        "reviewText": "Meh.",
        "overall": 2.0,
        "summary": "ok",
        "unixReviewTime": 5,
    },
]
_REVIEW_2018 = {
    "overall": 4.0,
    "verified": True,
    "reviewTime": "01 1, 2018",
    "reviewerID": "U3",
    "asin": "A2",
    "style": {"Format:": " Paperback"},
    "summary": "Fine strings",
    "unixReviewTime": 1514764800,
    "vote": "3",
}


def _write_reviews(path: Path) -> Path:
    lines = [json.dumps(r) for r in [*_REVIEWS_2014, _REVIEW_2018]]
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _write_meta(path: Path) -> Path:
    meta_2014 = {
        "asin": "A1",
        "title": "Pop Filter",
        "brand": "Acme",
        "categories": [["Musical Instruments", "Microphones"], ["Musical Instruments", "Accessories"]],
        "description": "A <b>double</b> screen &amp; gooseneck.",
        "salesRank": {"Musical Instruments": 5},
    }
    meta_2018 = {
        "asin": "A2",
        "title": "Strings",
        "brand": "",
        "category": ["Musical Instruments", "Guitar Strings"],
        "description": ["Bright tone.", "<p>Long life.</p>"],
    }
    unrelated = {"asin": "ZZZ", "title": "Not reviewed"}
    path.write_text(f"{meta_2014!r}\n{json.dumps(meta_2018)}\n{unrelated!r}\n")  # 2014 lines are Python literals
    return path


@pytest.mark.parametrize("name", ["reviews.json", "reviews.json.gz"])
def test_amazon_reader_2014_and_2018(tmp_path: Path, name: str) -> None:
    raw = read_raw("amazon", _write_reviews(tmp_path / name), meta=_write_meta(tmp_path / "meta.json"))
    assert raw.users == ["U1", "U2", "U3"] and raw.items == ["A1", "A1", "A2"]
    np.testing.assert_array_equal(raw.ratings, [5, 2, 4])
    np.testing.assert_array_equal(raw.timestamps, [1393545600, 5, 1514764800])
    assert raw.reviews == ["Nice! Works & sounds great.", "ok. Meh.", "Fine strings"]
    assert raw.item_text == {
        "A1": {
            "title": "Pop Filter",
            "brand": "Acme",
            "categories": "Musical Instruments, Microphones, Accessories",
            "description": "A double screen & gooseneck.",
        },
        "A2": {
            "title": "Strings",
            "categories": "Musical Instruments, Guitar Strings",
            "description": "Bright tone. Long life.",
        },
    }
    assert set(raw.source["files"]) == {name, "meta.json"}


def test_amazon_meta_never_evaluates_code(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text("{'asin': 'A1', 'title': __import__('os').getcwd()}\n")
    with pytest.raises(CLLM4RecError, match=r"meta.json:1: neither JSON nor a Python dict literal"):
        read_amazon_meta(path)


def test_review_text_joining() -> None:
    assert review_text("Great", "Loved it") == "Great. Loved it"
    assert review_text("Great!", None) == "Great!"
    assert review_text(None, " body ") == "body"
    assert review_text("", "") == ""
