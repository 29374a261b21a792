"""The GPU reference catalogue (``data/gpu_catalogue.csv``): what each model can physically do."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl


def _data_dir() -> Path:
    """The catalogue, policies and scenarios: ``pipelines/data`` in an installed wheel (shipped
    as package data), ``data/`` beside the packages in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "data", here.parent / "data"):
        if (candidate / "policy").is_dir():
            return candidate
    raise FileNotFoundError(f"fleetproof's data folder is missing: neither {here / 'data'} nor {here.parent / 'data'}")


DATA_DIR = _data_dir()
CATALOGUE_CSV = DATA_DIR / "gpu_catalogue.csv"
BOARDS_CSV = DATA_DIR / "multi_gpu_boards.csv"


@lru_cache(maxsize=4)
def load_catalogue(path: str | Path = CATALOGUE_CSV) -> pl.DataFrame:
    """One row per model: key, canonical name (first alias), specs and reward multiplier."""
    df = pl.read_csv(path, infer_schema_length=0)
    return df.with_columns(
        pl.col("aliases").str.split("|").list.first().str.strip_chars().alias("name"),
        pl.col("vram_mb").cast(pl.Int64),
        pl.col("vram_max_mb").cast(pl.Int64),
        pl.col("fp16_tensor_tflops").cast(pl.Float64),
        pl.col("fp32_tflops").cast(pl.Float64),
        pl.col("mem_bw_gbs").cast(pl.Float64),
        pl.col("reward_multiplier").cast(pl.Float64),
        pl.col("max_gpus_per_host").cast(pl.Int64),
    )


@lru_cache(maxsize=4)
def alias_table(path: str | Path = CATALOGUE_CSV) -> pl.DataFrame:
    """``alias -> model_key`` for every name a device may report (matched exactly)."""
    return (
        load_catalogue(path)
        .select("model_key", pl.col("aliases").str.split("|").alias("alias"))
        .explode("alias")
        .with_columns(pl.col("alias").str.strip_chars())
        .unique("alias", keep="first", maintain_order=True)
    )


NAME_KEY_MACRO = r"""
CREATE OR REPLACE TEMP MACRO gpu_name_key(name) AS
    trim(regexp_replace(regexp_replace(regexp_replace(lower(name), '[^a-z0-9]+', ' ', 'g'),
                                       '\b(nvidia|geforce|tesla)\b', '', 'g'), ' +', ' ', 'g'))
"""
"""A reported model name as the catalogue matches it: lower case, punctuation and runs of spaces
as one space, the words NVIDIA, GeForce and Tesla left out. Drivers and backends spell one card
several ways (``NVIDIA GeForce RTX 4090``, ``GeForce RTX 4090``, ``NVIDIA A100-SXM4-80GB``,
``A100 SXM4 80GB``); an unmatched name has no spec, so its device is priced only by the class
its measured throughput supports (``VENDOR_MACRO``) and its timing is held only to the fleet's
ceiling. Distinct cards keep distinct keys (``RTX 4090 D``,
``RTX A6000`` and ``RTX 6000 Ada Generation`` stay apart; ``register`` refuses a catalogue in
which two models share a key)."""


VENDOR_MACRO = r"""
CREATE OR REPLACE TEMP MACRO gpu_vendor(name) AS
    CASE WHEN regexp_matches(lower(name), '\bapple\b') THEN 'apple'
         WHEN regexp_matches(lower(name), '\b(nvidia|geforce|tesla|quadro|titan|rtx|gtx|grid)\b') THEN 'nvidia' END
"""
"""The catalogue vendor a model name belongs to by its words (``NVIDIA GeForce RTX 3060 Ti``,
``Apple M3 Ultra``, ``GRID A100D-20C``: NVIDIA's vGPU guests under older drivers), for a real
card the catalogue does not list: the reward stage classes it by its measured throughput among
that vendor's models, as it does a card slower than its claim. Null for a name of neither vendor."""


MEMORY_TOLERANCE = 0.06
"""NVML's memory totals differ from the marketed size by a few percent: a claim above a model's
largest configuration by more than this share is more memory than the model has (as
``spoofed_model``'s ``vram_tolerance``, the policy's copy for its own rule)."""


VGPU_PROFILE = r"-([0-9]+)[A-Z]$"
"""The vGPU profile NVML appends to a guest's card name (``NVIDIA A40-48Q``: 48 GB, Q series);
its number is the profile's frame buffer in GB."""

VGPU_BOARD = r"([0-9])[A-Z]{0,2}-[0-9]+[A-Z]$"
"""A profile with the board letters NVIDIA puts after the card's number (``A100D-80C``: the A100
PCIe 80GB; ``A100DX``, ``H100XM``, ``H100L``: other boards); replaced by the number alone, the
rest is the card's family (``A100``)."""


def declared_vgpu_sql(relation: str) -> str:
    """SQL: ``device_id, model_key, card_mib, profile_mib`` for each guest of ``relation`` (with
    ``device_id, gpu_model, virtualization_mode, vram_total_mb``) that declares its vGPU profile,
    once per card model its name can stand for: NVML names the guest after its card (or the
    card's family and board; older drivers brand it ``GRID``) and the profile, whose frame buffer
    fits the card, and the guest claims no more memory than that frame buffer. Such a guest sells
    the share it declares, not a card: ``virtualized_gpu`` does not reject it for its NVML mode,
    and the rewards pay it no more than its share of the card (``profile_mib / card_mib`` of the
    card's multiplier)."""
    tol = MEMORY_TOLERANCE
    return f"""
    SELECT n.device_id, c.model_key, c.vram_mb AS card_mib, n.profile_mib
    FROM (SELECT device_id, vram_total_mb, guest,
                 TRY_CAST(regexp_extract(guest, '{VGPU_PROFILE}', 1) AS BIGINT) * 1024 AS profile_mib
          FROM (SELECT *, regexp_replace(gpu_model, '^(NVIDIA )?GRID ', '') AS guest FROM {relation})
          WHERE virtualization_mode = 'VGPU' AND regexp_matches(guest, '{VGPU_PROFILE}')) n
    JOIN (SELECT DISTINCT name_key, model_key FROM gpu_alias) a
      ON a.name_key = gpu_name_key(regexp_replace(n.guest, '{VGPU_PROFILE}', ''))
      OR starts_with(a.name_key, gpu_name_key(regexp_replace(n.guest, '{VGPU_BOARD}', '\\1')) || ' ')
    JOIN gpu_catalogue c ON c.model_key = a.model_key
    WHERE n.profile_mib <= c.vram_max_mb * (1 + {tol}) AND coalesce(n.vram_total_mb, 0) <= n.profile_mib * (1 + {tol})
    """


MOBILE_SIBLING_SQL = r"""
CREATE OR REPLACE TEMP VIEW gpu_mobile_sibling AS
SELECT DISTINCT d.model_key, m.model_key AS mobile_key, c.vram_max_mb AS mobile_vram_max_mb
FROM gpu_alias d
JOIN gpu_alias m ON m.name_key = d.name_key || ' laptop gpu'
JOIN gpu_catalogue c ON c.model_key = m.model_key
"""
"""Each desktop model with the laptop chip sold under its name (``RTX 3080`` and ``RTX 3080 Laptop
GPU``). Laptops launched as the plain ``GeForce RTX 3080``, and some drivers still report that name
for the laptop chip, with the laptop's memory: 16 GB, which no desktop 3080 has. The features stage
reads a desktop name whose claimed memory exceeds every desktop configuration but fits the laptop
sibling's as the laptop chip (its spec, its peers), not as an impossible claim; a claim above both
stays the desktop model's, and ``spoofed_model`` holds it as impossible."""


@lru_cache(maxsize=4)
def load_boards(path: str | Path = BOARDS_CSV) -> pl.DataFrame:
    """Boards that carry several GPUs (``data/multi_gpu_boards.csv``: name, GPUs per board,
    source). NVML's serial is the board's, so the GPUs of one such board report one serial,
    each with its own UUID and bus id (NVML's ``nvmlDeviceGetHandleBySerial`` refuses a serial
    that "more than one device has (dual GPU boards)"); ``duplicate_hardware`` does not read
    such a serial as one identity on several devices. A written network's Tesla K80s, two GPUs
    to a board, had 20 honest devices rejected as copies of each other before it."""
    return pl.read_csv(path, infer_schema_length=0).with_columns(pl.col("gpus_per_board").cast(pl.Int64))


def register(con: duckdb.DuckDBPyConnection, path: str | Path = CATALOGUE_CSV) -> None:
    """Expose the catalogue to SQL as ``gpu_catalogue``, ``gpu_alias`` (temporary views: every
    alias with its ``name_key``), ``gpu_mobile_sibling`` (``MOBILE_SIBLING_SQL``) and
    ``gpu_board`` (``load_boards``: name_key, gpus_per_board), and the macros ``gpu_name_key``
    (``NAME_KEY_MACRO``) and ``gpu_vendor`` (``VENDOR_MACRO``)."""
    con.register("gpu_catalogue_df", load_catalogue(path).to_arrow())
    con.register("gpu_alias_df", alias_table(path).to_arrow())
    con.register("gpu_board_df", load_boards().to_arrow())
    con.execute(NAME_KEY_MACRO)
    con.execute(VENDOR_MACRO)
    con.execute(
        "CREATE OR REPLACE TEMP VIEW gpu_board AS SELECT gpu_name_key(name) AS name_key, gpus_per_board FROM gpu_board_df"
    )
    con.execute("CREATE OR REPLACE TEMP VIEW gpu_catalogue AS SELECT * FROM gpu_catalogue_df")
    con.execute("CREATE OR REPLACE TEMP VIEW gpu_alias AS SELECT *, gpu_name_key(alias) AS name_key FROM gpu_alias_df")
    con.execute(MOBILE_SIBLING_SQL)
    clashes = con.execute(
        "SELECT name_key, list(DISTINCT model_key ORDER BY model_key) FROM gpu_alias GROUP BY name_key "
        "HAVING count(DISTINCT model_key) > 1 ORDER BY name_key"
    ).fetchall()
    if clashes:
        raise ValueError(f"GPU catalogue {path}: aliases of different models match the same names: {clashes}")
