"""The GPU reference catalogue: complete, sourced, physically sensible, aliases unambiguous."""

from __future__ import annotations

import duckdb
import polars as pl

from pipelines.catalogue import alias_table, load_boards, load_catalogue, register

REQUIRED = [
    "rtx_3060", "rtx_3070", "rtx_3080", "rtx_3080_ti", "rtx_3090", "rtx_4060", "rtx_4070", "rtx_4080",
    "rtx_4090", "rtx_5090", "t4", "a10", "a40", "l4", "l40s", "a100_40gb_pcie", "a100_40gb_sxm",
    "a100_80gb_pcie", "a100_80gb_sxm", "h100_pcie", "h100_sxm", "h200", "b200",
    *(f"apple_m{g}{v}" for g in range(1, 5) for v in ("", "_pro", "_max")),
    *(f"rtx_{m}_laptop" for m in ("3060", "3070", "3080", "3080_ti", "4060", "4070", "4080", "4090")),
]  # fmt: skip


def test_every_required_model_is_there_with_a_source() -> None:
    cat = load_catalogue()
    assert set(REQUIRED) <= set(cat["model_key"])
    assert cat["source"].str.contains("https://").all()
    for col in ("vram_mb", "vram_max_mb", "fp16_tensor_tflops", "fp32_tflops", "mem_bw_gbs", "max_gpus_per_host"):
        assert (cat[col] > 0).all(), col
    assert (cat["reward_multiplier"] >= 0).all()


def test_figures_are_physically_consistent() -> None:
    cat = load_catalogue().filter(pl.col("vendor") == "nvidia")
    # tensor cores beat plain FP32 on every NVIDIA part listed
    assert (cat["fp16_tensor_tflops"] >= cat["fp32_tflops"]).all()
    spec = dict(zip(cat["model_key"], cat["fp16_tensor_tflops"]))
    # GeForce FP32-accumulate runs at half rate: a 4090 (165) is far below an H100 SXM (989)
    assert spec["rtx_4090"] < spec["a100_80gb_sxm"] < spec["h100_sxm"] <= spec["h200"] < spec["b200"]
    assert abs(spec["rtx_4090"] - 165.2) < 1


def test_aliases_name_one_model_each_and_the_first_is_canonical() -> None:
    aliases = alias_table()
    assert aliases["alias"].is_unique().all()
    cat = load_catalogue()
    assert dict(zip(cat["model_key"], cat["name"]))["rtx_4090"] == "NVIDIA GeForce RTX 4090"
    assert "Apple M2 Pro" in set(aliases["alias"])


def test_max_memory_covers_the_base_configuration_and_apple_options() -> None:
    cat = load_catalogue()
    assert (cat["vram_max_mb"] >= cat["vram_mb"]).all()
    top = dict(zip(cat["model_key"], cat["vram_max_mb"]))
    assert top["apple_m2"] == 24 * 1024  # 8 GB base, configurable to 24 GB
    assert top["rtx_4090"] == 24 * 1024  # a discrete card ships with one size


def test_every_laptop_chip_is_the_mobile_sibling_of_the_desktop_model_it_is_named_after() -> None:
    """A laptop row is found from its desktop model by name (``RTX 3080`` -> ``RTX 3080 Laptop
    GPU``), so the features stage can read a desktop name with the laptop's memory as the laptop."""
    import duckdb

    from pipelines import catalogue

    con = duckdb.connect()
    catalogue.register(con)
    siblings = dict(con.execute("SELECT model_key, mobile_key FROM gpu_mobile_sibling").fetchall())
    laptops = set(load_catalogue().filter(pl.col("form") == "mobile")["model_key"])
    assert len(laptops) == 8 and set(siblings.values()) == laptops
    assert all(siblings[key.removesuffix("_laptop")] == key for key in laptops)


def test_every_multi_gpu_board_has_a_source_and_its_own_name_key() -> None:
    boards = load_boards()
    assert boards.height >= 8 and boards["gpus_per_board"].min() >= 2
    assert all(s.startswith("https://") for s in boards["source"])
    con = duckdb.connect()
    register(con)
    keys = dict(con.execute("SELECT name_key, gpus_per_board FROM gpu_board").fetchall())
    assert len(keys) == boards.height and keys["k80"] == 2 and keys["a16"] == 4
