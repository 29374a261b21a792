"""The analyst dashboard: every page of the demo's report opens in headless Chromium with every
figure rendered and no JavaScript error; empty data says so; numbers are exact."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dashboards import PAGES, build_report, gpu_fraud, rewards, sybil
from dashboards.browser import check_page, chromium, chromium_path
from dashboards.context import ReportContext, report_context
from pipelines.cli import main
from pipelines.db import connect
from pipelines.evaluate import flagged_devices
from pipelines.simulate import truth_devices

ARTIFACTS = (
    Path(os.environ.get("FLEETPROOF_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "var" / "test-artifacts"))
    / "dashboards"
)


@pytest.fixture(scope="module")
def browser():
    """Headless system Chromium; skipped when none is installed unless ``.ci/run`` requires it."""
    if chromium_path() is None:
        if os.environ.get("FLEETPROOF_REQUIRE_BROWSER"):
            pytest.fail("no Chromium found although FLEETPROOF_REQUIRE_BROWSER is set (apt-get install chromium)")
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A small demo (400 devices x 7 hours: the burst at hour 6 included) through the README's
    command: (workdir, what it printed)."""
    work = tmp_path_factory.mktemp("demo") / "work"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--workdir", str(work), "--devices", "400", "--hours", "7", "--seed", "7"]) == 0
    return work, printed.getvalue()


@pytest.fixture(scope="module")
def demo(demo_run: tuple[Path, str]) -> Path:
    return demo_run[0]


@pytest.mark.slow
def test_the_demo_runs_closed_loop_so_the_slices_of_a_spoofed_card_are_challenged_together_and_caught(
    demo: Path,
) -> None:
    """The demo's backend follows the pipeline's challenge plan: a card sliced into devices with
    spoofed identities is batched together from the second hour and flagged; open loop (every
    hour simulated up front) would leave them unbatched and unflagged."""
    truth = truth_devices(demo / "drops")
    slices = truth.filter(pl.col("population") == "virtualized_spoofed")["device_id"].to_list()
    assert len(slices) >= 4
    with connect(demo / "fleetproof.duckdb") as con:
        flagged = flagged_devices(con).filter(pl.col("device_id").is_in(slices) & pl.col("flagged"))
        cobatched = con.execute(
            "SELECT count(DISTINCT epoch) FROM challenge_context WHERE batch_siblings > 0 AND list_contains(?, device_id)",
            [slices],
        ).fetchall()[0][0]
    assert flagged.height == len(slices)
    assert cobatched >= 6  # every hour after the first


@pytest.mark.slow
def test_demo_writes_the_dashboard_and_says_where_to_open_it(demo_run: tuple[Path, str]) -> None:
    work, printed = demo_run
    index = work / "dashboard" / "index.html"
    assert index.is_file()
    assert f"open {index.resolve().as_uri()}" in printed
    for slug, _, _ in PAGES:
        assert (work / "dashboard" / f"{slug}.html").is_file()


@pytest.mark.slow
def test_every_page_of_the_demo_report_renders_every_figure_without_errors(demo: Path, browser) -> None:
    report = demo / "dashboard"
    pages = sorted(report.glob("*.html")) + sorted((report / "devices").glob("*.html"))
    assert len(pages) == len(PAGES) + 1 + 10  # topic pages, index, ten device pages
    failures, figures = [], 0
    for page in pages:
        check = check_page(browser, page, ARTIFACTS / f"{page.stem}.png")
        figures += check.figures
        if not check.ok:
            failures.append(f"{page.name}: {check.rendered}/{check.figures} figures rendered; {check.errors}")
        assert (ARTIFACTS / f"{page.stem}.png").stat().st_size > 10_000
    assert not failures, "\n".join(failures)
    # The demo network has data for the main charts: overview 3, GPU fraud 3, sybil 2, rewards 4, quality 1.
    assert figures >= 13


@pytest.mark.slow
def test_the_sybil_page_draws_the_largest_cluster_and_its_link_kinds(demo: Path) -> None:
    with connect(demo / "fleetproof.duckdb") as con:
        page = sybil.build(report_context(con))
        largest = con.execute("""SELECT cluster_id, count(*) AS n FROM sybil_clusters
                                 WHERE epoch = (SELECT max(epoch) FROM processed_epochs)
                                 GROUP BY ALL ORDER BY n DESC, cluster_id LIMIT 1""").fetchall()  # fmt: skip
    network = next(p for p in page.panels if p.slug == "network")
    assert largest and largest[0][0] in network.title
    names = {t.name for t in network.figure.data}
    assert "account" in names and names & {"funding", "email", "email_pattern", "restart", "host", "gpu"}


@pytest.mark.slow
def test_reward_figures_carry_exact_base_units(demo: Path) -> None:
    with connect(demo / "fleetproof.duckdb") as con:
        ctx = report_context(con)
        pool = rewards.pool_split(ctx)
        paid = con.execute("SELECT sum(amount_base_units) FROM reward_allocations WHERE epoch >= ?", [ctx.since]).fetchall()[0][0]
    arrays = [np.asarray(trace.customdata) for trace in pool.figure.data]
    assert all(np.issubdtype(a.dtype, np.integer) for a in arrays)
    assert sum(int(u) for a in arrays for u in a) == paid > 0


@pytest.mark.slow
def test_held_shares_panel_draws_the_ledgers_exact_base_units(demo: Path) -> None:
    with connect(demo / "fleetproof.duckdb") as con:
        ctx = report_context(con)
        panel = rewards.held_shares(ctx)
        ledger = dict(con.execute(
            """SELECT 'held', sum(amount_base_units) FROM held_rewards WHERE held_epoch >= $since
               UNION ALL SELECT outcome, sum(amount_base_units) FROM held_rewards WHERE settled_epoch >= $since GROUP BY 1""",
            {"since": ctx.since}).fetchall())  # fmt: skip
    drawn = {trace.name: sum(int(u) for u in trace.customdata) for trace in panel.figure.data}
    assert drawn == {k: int(v) for k, v in ledger.items() if v} and drawn["held"] > 0


@pytest.mark.slow
def test_scatter_points_are_sampled_in_sql(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with connect(demo / "fleetproof.duckdb") as con:
        ctx = report_context(con)
        flagged = con.execute("""SELECT count(*) FROM device_features f JOIN device_tiers t USING (epoch, device_id)
                                 WHERE f.epoch = ? AND f.spec_tflops > 0 AND f.tflops_median IS NOT NULL
                                   AND t.tier IN ('probation', 'rejected')""", [ctx.latest]).fetchall()[0][0]  # fmt: skip
        assert flagged > 5
        monkeypatch.setattr(gpu_fraud, "SAMPLE_POINTS", 5)
        panel = gpu_fraud.throughput_vs_spec(ctx)
    points = [len(t.x) for t in panel.figure.data if t.type == "scattergl"]
    assert sum(points) == 5  # sampled after filtering: exactly the cap, all of them flagged devices


@pytest.mark.slow
def test_a_report_as_of_the_first_epoch_has_nothing_to_compare_with(demo: Path, tmp_path: Path) -> None:
    with connect(demo / "fleetproof.duckdb") as con:
        first = con.execute("SELECT min(epoch) FROM processed_epochs").fetchall()[0][0]
        build_report(con, tmp_path, as_of=first, only=["overview"])
    page = (tmp_path / "overview.html").read_text()
    assert f"latest epoch {first}" in page
    assert f"No data: {first} is the only processed epoch" in page


def test_an_empty_database_says_so_on_every_page(tmp_path: Path, browser) -> None:
    with connect(tmp_path / "empty.duckdb") as con:
        report = build_report(con, tmp_path / "report")
    assert report.device_pages == []
    for page in [*report.pages, report.index]:
        check = check_page(browser, page, ARTIFACTS / f"empty-{page.stem}.png")
        assert check.errors == [] and check.figures == 0, page.name
        assert check.empty_notes >= 1, f"{page.name} shows no 'No data' note"
    assert "No data: no epoch has been processed yet" in (tmp_path / "report" / "overview.html").read_text()


def test_an_embedded_page_travels_alone(tmp_path: Path, browser) -> None:
    with connect(tmp_path / "empty.duckdb") as con:
        report = build_report(con, tmp_path / "report", embed=True, only=["quality"])
    assert not (tmp_path / "report" / "plotly.min.js").exists()
    page = report.pages[0]
    assert page.stat().st_size > 1_000_000  # plotly.js inside
    check = check_page(browser, page)
    assert check.ok and check.errors == []


def test_bad_arguments_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--db", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path / "r")]) == 2
    assert "no database at" in capsys.readouterr().err
    with connect(tmp_path / "db.duckdb"):
        pass
    assert main(["dashboard", "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "r"), "--device", "dev_nope"]) == 2
    assert "device(s) not in the database: dev_nope" in capsys.readouterr().err
    assert main(["dashboard", "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "r"), "--window-hours", "0"]) == 2
    assert "window_hours must be at least 1" in capsys.readouterr().err
    assert main(["dashboard", "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "r"), "--epoch", "yesterday"]) == 2
    assert "epoch 'yesterday' is not YYYY-MM-DDTHH" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["dashboard", "--db", str(tmp_path / "db.duckdb"), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_dagster_asset_writes_the_report_as_of_its_hour(demo: Path, tmp_path: Path) -> None:
    from dagster import DagsterInstance, materialize

    from dagster_project.defs.dashboard import dashboard_report
    from dagster_project.defs.partitions import hours
    from dagster_project.defs.resources import FleetproofStore

    store = FleetproofStore(drops_dir=str(demo / "drops"), db_path=str(demo / "fleetproof.duckdb"), out_dir=str(tmp_path))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(hours.name, ["2024-08-14T02"])
    result = materialize([dashboard_report], partition_key="2024-08-14T02", resources={"store": store}, instance=instance)
    assert result.success
    overview = (tmp_path / "dashboard" / "epoch=2024-08-14T02" / "overview.html").read_text()
    assert "latest epoch 2024-08-14T02" in overview


def test_contention_compares_each_answer_with_its_models_median_at_its_product_size(tmp_path: Path) -> None:
    """Honest cards batched in pairs on small products and measured alone on large ones keep their
    speed at every size: a small product fills no card, so a speed over the model's median for all
    sizes would draw the pairs at a fraction of it, as if they shared one card."""
    curve = {256: 2.0, 512: 15.0, 1024: 50.0, 2048: 200.0}
    rows = []
    for d in range(12):
        for h, n in enumerate((256, 512, 1024, 2048) * 2):
            siblings = 1 if n <= 512 else 0
            rows.append((f"2024-08-14T{h:02d}", f"c{d}-{h}", f"d{d}", f"b{d // 2}-{h}" if siblings else None, "matmul", "ok",
                         curve[n] * (0.95 + 0.01 * (d % 10)), "1.1.1.1", "h", "acc", "a100_80gb_sxm", siblings, n, True))  # fmt: skip
    with connect(tmp_path / "sizes.duckdb") as con:
        con.executemany(f"INSERT INTO challenge_context VALUES ({', '.join(['?'] * 14)})", rows)
        for h in range(8):  # the features stage's yardstick: the median over every size
            con.execute("INSERT INTO model_peers VALUES (?, 'a100_80gb_sxm', 12, 32.5, 180.0)", [f"2024-08-14T{h:02d}"])
        panel = gpu_fraud.contention(ReportContext(con, "2024-08-14T07", "2024-08-14T00", 8))
    bars = panel.figure.data[0]
    assert list(bars.x) == ["0", "1"] and all(0.9 < y < 1.1 for y in bars.y)
