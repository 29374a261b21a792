"""``sybil``: many accounts run by one operator, found from many weak signals.

Builds the account graph (``pipelines.sybil.links``: shared funders up to three hops back,
mailboxes and mailbox shapes, restart times of day, VM templates, hosts, IPs, referrals, sign-up
times, each weighted by how rare the shared value is on this network, with hubs cut), finds communities (``pipelines.sybil.communities``: Louvain per component, pieces of one near-clique joined again), counts the
members whose machines went silent together beyond the network's own rate
(``pipelines.sybil.outages``: a fleet redeployed by one script) and keeps those that only a
sybil ring explains. Their accounts go to ``sybil_clusters`` with the evidence
as a short story; every device of a member account gets this detector's evidence. The graph
is rebuilt every ``refresh_hours`` (default every hour; at hours divisible by it, or when the
previous hour was not processed); in between, the rings found last stay in force. A longer
refresh saves time but a ring whose evidence appears between refreshes waits for the next one.

Proof: a cluster is statistical evidence about a group, and one hour's graph can glue an honest
account to a ring through coincidences that do not recur, or through one neighbourly link (a
referral, a popular CPU). An account goes to ``reject`` only after ``confirm_hours`` epochs of
the window in a cluster scoring >= ``reject_score`` *and* when it is itself tied to other
members by >= ``reject_member_kinds`` (3) operator kinds (``member_strong_kinds`` in the evidence:
honest accounts caught in rings by coincidence were tied by two, a mailbox shape and a restart
hour, ring members mostly by three to five; behind one site's address, ``site_mailboxes`` in the
cluster's evidence, a mailbox shape is the site's and not counted);
otherwise its devices are in probation (rewards held, expiring if the cluster dissolves).
"""

from __future__ import annotations

import json

import networkx as nx
import polars as pl

from detectors.base import SCORE_SCHEMA, Detector, Evidence
from pipelines.contract import FREE_MAIL
from pipelines.features import previous_epoch
from pipelines.sybil.communities import (
    ClusterRules,
    at_own_domain,
    cluster_id,
    communities,
    core_members,
    fleets_apart,
    membership_chance,
    rejoin_cores,
    ring_edges,
    score_clusters,
)
from pipelines.sybil.links import (
    ANY_DOMAIN_SHAPE,
    KINDS,
    PAYMENT_KINDS,
    SHAPE_KINDS,
    SOURCES,
    STRONG_KINDS,
    TURN_KIND_OF,
    build_account_graph,
)
from pipelines.sybil.outages import OutageRules, synchronized_outages

FAMILY_PAID_SQL = """
SELECT account_id FROM account_attrs WHERE kind = 'wallet' AND value IN (
    SELECT value FROM account_attrs WHERE kind = 'wallet' GROUP BY value HAVING count(*) BETWEEN 2 AND $household
) ORDER BY account_id
"""
"""Accounts paid to a wallet they share with a household's number of others at most (``account_attrs``,
as the graph read it this epoch): for them ``wallet`` is no kind of the reject rule."""


class SybilRings(Detector):
    name = "sybil"
    fraud_type = "sybil"
    writes = ("sybil_clusters",)
    needs = ("timeshare",)  # reads the epoch's timeshare_rotas (the ``*_turns`` links, rota rings)

    def __init__(self, threshold: float = 0.5, window_hours: int = 24, min_edge_weight: float = 0.3,
                 min_accounts: int = 3, min_score: float = 0.8, min_strong_kinds: int = 2,
                 min_coverage: float = 0.5, reject_score: float = 0.85, confirm_hours: int = 6, reject_member_kinds: int = 3,
                 refresh_hours: int = 1,
                 block: int = 32, hub_min: int = 10, hub_min_share: float = 0.5, hub_min_lift: float = 3.0,
                 cohesion_max_n: int = 30, exclusive_share: float = 0.8, exclusive_coverage: float = 0.8,
                 marks_min_accounts: int = 10, marked_strong_kinds: int = 3, merge_ratio: float = 0.3,
                 broad_share: float = 0.8, member_chance: float = 0.01, household_accounts: int = 6,
                 site_accounts: int = 6, site_devices: int = 4,
                 sync_minutes: int = 15, sync_alpha: float = 1e-6, sync_min_asns: int = 2):  # fmt: skip
        super().__init__(threshold)
        if sync_minutes < 1 or not 0 < sync_alpha <= 1 or sync_min_asns < 1:
            raise ValueError(
                f"{self.name}: sync_minutes {sync_minutes} (>= 1), sync_alpha {sync_alpha} (a level in (0, 1]) "
                f"and sync_min_asns {sync_min_asns} (>= 1) out of range"
            )
        self.window_hours = window_hours
        self.min_edge_weight = min_edge_weight
        self.min_accounts = min_accounts
        self.min_score = min_score
        self.min_strong_kinds = min_strong_kinds
        self.min_coverage = min_coverage
        self.reject_score = reject_score
        self.confirm_hours = confirm_hours
        self.reject_member_kinds = reject_member_kinds
        self.refresh_hours = refresh_hours
        self.block = block
        self.hub_min = hub_min
        self.hub_min_share = hub_min_share
        self.hub_min_lift = hub_min_lift
        self.cohesion_max_n = cohesion_max_n
        self.exclusive_share = exclusive_share
        self.exclusive_coverage = exclusive_coverage
        self.marked_strong_kinds = marked_strong_kinds
        self.marks_min_accounts = marks_min_accounts
        self.merge_ratio = merge_ratio
        self.broad_share = broad_share
        self.member_chance = member_chance
        self.household_accounts = household_accounts
        self.site_accounts = site_accounts
        self.site_devices = site_devices
        self.sync_minutes = sync_minutes
        self.sync_alpha = sync_alpha
        self.sync_min_asns = sync_min_asns

    def _rules(self) -> ClusterRules:
        return ClusterRules(min_accounts=self.min_accounts, min_score=self.min_score,
                            min_strong_kinds=self.min_strong_kinds, min_coverage=self.min_coverage,
                            exclusive_share=self.exclusive_share, exclusive_coverage=self.exclusive_coverage,
                            marks_min_accounts=self.marks_min_accounts, marked_strong_kinds=self.marked_strong_kinds,
                            merge_ratio=self.merge_ratio, broad_share=self.broad_share,
                            household_accounts=self.household_accounts, member_chance=self.member_chance,
                            site_accounts=self.site_accounts, site_devices=self.site_devices)  # fmt: skip

    def fit(self, evidence: Evidence) -> SybilRings:
        con, epoch = evidence.con, evidence.epoch
        previous = previous_epoch(epoch)
        due = int(epoch[-2:]) % self.refresh_hours == 0
        if not due and con.execute("SELECT count(*) FROM processed_epochs WHERE epoch = ?", [previous]).fetchall()[0][0]:
            # between refreshes the rings found last stay in force (the graph changes slowly)
            kept = con.sql("SELECT cluster_id, account_id, score, evidence FROM sybil_clusters WHERE epoch = $previous",
                           params={"previous": previous})  # fmt: skip
            self.tables_ = {"sybil_clusters": pl.from_arrow(kept.to_arrow_table())}
            self.edges_, self.clusters_ = None, None
            return self
        self.edges_ = build_account_graph(evidence.con, evidence.epoch, self.window_hours, self.min_edge_weight,
                                          block=self.block, hub_min=self.hub_min, min_share=self.hub_min_share,
                                          min_lift=self.hub_min_lift, cohesion_max_n=self.cohesion_max_n)  # fmt: skip
        edges = pl.from_arrow(evidence.con.sql("SELECT * FROM account_edges ORDER BY a, b").to_arrow_table())
        rules = self._rules()
        whole = communities(edges, rules)
        accounts = int(con.execute("SELECT count(DISTINCT account_id) FROM account_attrs").fetchall()[0][0])  # the population
        cores, whole = rejoin_cores(edges, core_members(edges, whole, rules, accounts), whole, rules)
        fleets = self._fleets(evidence, cores)
        offices = self._offices(evidence, cores)
        cores = fleets_apart(edges, cores, fleets, rules)
        synced = self._synchronized(evidence, cores)
        self.clusters_ = score_clusters(edges, cores, rules, whole, synced, fleets, offices)  # type: ignore[arg-type]
        self.clusters_ = pl.concat([self.clusters_, self._one_mailbox_rings(evidence, self.clusters_)], how="vertical_relaxed")
        self.clusters_ = pl.concat([self.clusters_, self._one_wallet_rings(evidence, self.clusters_)], how="vertical_relaxed")
        self.clusters_ = pl.concat([self.clusters_, self._funding_chain_rings(evidence, self.clusters_)], how="vertical_relaxed")
        self.clusters_ = pl.concat([self.clusters_, self._funding_tree_rings(evidence, self.clusters_)], how="vertical_relaxed")
        self.clusters_ = self._with_rota_rings(evidence, self.clusters_)
        rings = self.clusters_.filter(pl.col("is_sybil")).explode("members").rename({"members": "account_id"})
        # member_strong_kinds, for the reject rule, counts a mailbox shape as scoring reads it; tie_kinds,
        # for the chance that a member's ties are a coincidence, counts every shape that ties it (read so
        # before the reject rule's change, a benchmark network's jittered ring lost members to chance)
        empty = pl.lit([], dtype=pl.List(pl.String))
        rings = rings.join(
            _member_kinds(edges, rings, self.min_accounts), on=["cluster_id", "account_id"], how="left"
        ).with_columns(pl.col("member_strong_kinds").fill_null(empty), pl.col("tie_kinds").fill_null(empty))
        # behind one site's address a mailbox shape is the site's (its domain, its naming rule), not
        # a member's own tie: a lab whose head paid its stakes on one workstation model was rejected
        # for funding, template and the university's address format
        at_site = pl.col("evidence").str.json_path_match("$.site_mailboxes") == "true"
        # a payout wallet a family's few accounts share is declared, not hidden: no proof of a ring
        # (a sixteenth network written by others: two families, each paid to a parent's wallet, glued
        # into one community by an exchange wallet that funded both, were rejected for funding, the
        # wallet and one stake burst)
        family_paid = [a for (a,) in evidence.con.execute(FAMILY_PAID_SQL, {"household": self.household_accounts}).fetchall()]
        for column in ("member_strong_kinds", "tie_kinds"):
            rings = rings.with_columns(
                pl.when(at_site)
                .then(pl.col(column).list.eval(pl.element().filter(~pl.element().is_in(list(SHAPE_KINDS)))))
                .otherwise(pl.col(column))
                .alias(column)
            ).with_columns(
                pl.when(pl.col("account_id").is_in(family_paid))
                .then(pl.col(column).list.eval(pl.element().filter(pl.element() != "wallet")))
                .otherwise(pl.col(column))
                .alias(column)
            )
        in_step = pl.DataFrame(
            [(cluster_id(cores[i]), a) for i, s in synced.items() for a in s["accounts"]],
            schema={"cluster_id": pl.String, "account_id": pl.String},
            orient="row",
        )
        rings = self._without_coincidences(edges, rings, accounts, in_step)
        found: pl.DataFrame = pl.DataFrame()
        if rings.height:  # the epoch's sybil_clusters rows; the detect stage stores them
            con.register(
                "rings_now",
                rings.select(
                    "cluster_id", "account_id", "score", "evidence", "member_strong_kinds", "coincidental_members"
                ).to_arrow(),
            )
            found = pl.from_arrow(con.sql(
                "SELECT cluster_id, account_id, score, "
                "json_merge_patch(CAST(evidence AS JSON), json_object('member_strong_kinds', member_strong_kinds, "
                "'accounts', list(account_id) OVER (PARTITION BY cluster_id ORDER BY account_id "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)[:50], "
                "'coincidental_members', coincidental_members)) AS evidence "
                "FROM rings_now ORDER BY cluster_id, account_id"
            ).to_arrow_table())  # fmt: skip
            con.unregister("rings_now")
        self.tables_ = {"sybil_clusters": found}
        return self

    def _fleets(self, evidence: Evidence, cores: list[list[str]]) -> dict[str, int]:
        """Devices each community member reported in the window, for those running at least
        ``site_devices`` (``communities.operator_sites``: accounts each running a fleet at a site
        of its own)."""
        rows = _of_members(
            evidence, cores,
            "SELECT f.account_id, count(DISTINCT f.device_id) FROM device_features f "
            "JOIN community_members m USING (account_id) "
            "WHERE f.epoch > hours_back($epoch, $window) AND f.epoch <= $epoch "
            "GROUP BY f.account_id HAVING count(DISTINCT f.device_id) >= $least",
            {"epoch": evidence.epoch, "window": self.window_hours, "least": self.site_devices},
        )  # fmt: skip
        return {a: int(n) for a, n in rows}

    def _offices(self, evidence: Evidence, cores: list[list[str]]) -> dict[str, tuple[str, int, int]]:
        """Each community member's mail domain, with how many accounts of the network hold a mailbox
        there and at how many sign-up sites (an account with no sign-up address a site of its own):
        a company's own domain is held by its staff alone, from its office or its racks
        (``communities.company_office``, ``communities.organisation_fleets``). A throwaway-mail
        domain (the ``disposable-email-domains`` list) is nobody's own: a twenty-second network
        written by others had a ring of 30 accounts with four cards each at ``mail.tm``, which
        few others held, read as one organisation's fleets and never held. Nor is a mail vendor's
        (``contract.FREE_MAIL``): a ring may be the only holder of a vendor's domain in a network
        (a twenty-eighth network's ring held all eleven ``tutanota.com`` mailboxes)."""
        rows = _of_members(
            evidence, cores,
            "WITH mail AS (SELECT account_id, split_part(value, '@', 2) AS domain FROM account_attrs WHERE kind = 'email' "
            "              AND split_part(value, '@', 2) NOT IN (SELECT domain FROM disposable_domains) "
            "              AND NOT list_contains($vendors, lower(split_part(value, '@', 2)))), "
            "site AS (SELECT account_id, value AS site FROM account_attrs WHERE kind = 'signup_ip'), "
            "theirs AS (SELECT * FROM mail WHERE domain IN (SELECT domain FROM mail JOIN community_members USING (account_id))), "
            "held AS (SELECT m.domain, count(DISTINCT m.account_id) AS holders, "
            "                count(DISTINCT coalesce(s.site, 'account:' || m.account_id)) AS sites "
            "         FROM theirs m LEFT JOIN site s USING (account_id) GROUP BY m.domain) "
            "SELECT m.account_id, m.domain, h.holders, h.sites FROM mail m JOIN held h USING (domain) "
            "JOIN community_members USING (account_id)",
            {"vendors": list(FREE_MAIL)},
        )  # fmt: skip
        return {a: (d, int(n), int(k)) for a, d, n, k in rows if d}

    def _synchronized(self, evidence: Evidence, cores: list[list[str]]) -> dict[int, dict]:
        """``outages.synchronized_outages`` of the communities of ``min_accounts`` or more, by
        index into ``cores``."""
        big = [i for i, c in enumerate(cores) if len(c) >= self.min_accounts]
        rules = OutageRules(minutes=self.sync_minutes, alpha=self.sync_alpha, min_asns=self.sync_min_asns)
        found = synchronized_outages(evidence.con, evidence.epoch, self.window_hours, [cores[i] for i in big], rules)
        return {big[j]: s for j, s in found.items()}

    def _one_mailbox_rings(self, evidence: Evidence, clusters: pl.DataFrame) -> pl.DataFrame:
        """Rings of ``min_accounts`` or more accounts behind one mailbox spelled in two ways or more
        (``contract.mailbox``: Gmail's dots and ``+tags`` deliver to one inbox), none of them in a
        ring yet. Honest model: a person reads one inbox; a family that shares one types it the same
        way each time (three accounts on one address and nothing else are no ring); a second
        spelling exists only to pass a sign-up's one-account-per-address check. A fifth network
        written by others had a small ring of three on ``jo.hnsmith@``, ``john.smith@`` and
        ``johnsmit.h@`` gmail.com that nothing else tied. Scored as one kind (``email``), so held,
        never rejected, on this alone."""
        groups = evidence.sql(
            """
            WITH a AS (SELECT account_id, arg_max(email, _hour) AS email FROM accounts WHERE _hour <= $epoch GROUP BY account_id),
            boxed AS (SELECT account_id, email, mailbox(email) AS box FROM a WHERE contains(email, '@'))
            SELECT box, split_part(box, '@', 2) AS domain,
                   list(account_id ORDER BY account_id) AS members, count(DISTINCT lower(email)) AS spellings
            FROM boxed GROUP BY ALL
            HAVING count(*) >= $min AND count(DISTINCT lower(email)) >= 2
            ORDER BY box
            """,
            min=self.min_accounts,
        )
        stories = [
            (
                g["members"],
                f"{len(g['members'])} accounts behind one {g['domain']} mailbox, spelled {g['spellings']} ways (dots, +tags)",
            )
            for g in groups.iter_rows(named=True)
        ]
        return _one_identity_rings(stories, "email", "one_mailbox", clusters)

    def _one_wallet_rings(self, evidence: Evidence, clusters: pl.DataFrame) -> pl.DataFrame:
        """Rings of more than ``household_accounts`` accounts paid to one wallet (their latest
        payout wallet), none of them in a ring yet. Honest model: rewards paid to one wallet are its
        owner's; a family or a couple may have theirs paid to a parent's wallet (five networks written
        by others: honest groups of 3 and 4, the same bound a household is); a ring that moves its
        accounts' payouts to a few consolidation wallets is one owner's 10-12 accounts a wallet
        (three networks written by others, 52 accounts, nothing else of their own tying 20 of them).
        Scored as one kind (``wallet``), so held, never rejected, on this alone."""
        # each account's payout wallet, as the graph read it this epoch (links.account_attributes)
        groups = pl.from_arrow(
            evidence.con.sql(
                "SELECT value AS wallet, list(account_id ORDER BY account_id) AS members FROM account_attrs "
                "WHERE kind = 'wallet' GROUP BY value HAVING count(*) > $household ORDER BY value",
                params={"household": self.household_accounts},
            ).to_arrow_table()
        )
        stories = [(g["members"], f"{len(g['members'])} accounts paid to one wallet") for g in groups.iter_rows(named=True)]
        return _one_identity_rings(stories, "wallet", "one_wallet", clusters)

    def _funding_chain_rings(self, evidence: Evidence, clusters: pl.DataFrame) -> pl.DataFrame:
        """Rings of accounts whose stakes were paid one from another's payout wallet in a chain of
        more than ``household_accounts`` wallets (``funding_chains``), none of them in a ring yet.
        Honest model: a parent, a company's treasury or a friend pays others' stakes from one
        wallet (a star, one hop deep; five networks written by others: families and firms of up to
        six), an exchange pays thousands (a hub, left out); nobody honest passes one stake on from
        account to account. Two networks written by others did: the same tokens funding each new
        account of a ring from the previous one's wallet, 8 and 30 accounts long, nothing else
        tying them (a mailbox, a machine or an address). Scored as one kind (``funding``), so held,
        never rejected, on this alone."""
        links = evidence.sql(
            """
            WITH own AS (SELECT value AS wallet FROM account_attrs WHERE kind = 'wallet' GROUP BY value)
            SELECT DISTINCT s.funder_wallet AS funder, s.wallet AS funded FROM stake_events s
            WHERE s._hour <= $epoch AND s.funder_wallet <> s.wallet
              AND s.funder_wallet IN (SELECT wallet FROM own) AND s.wallet IN (SELECT wallet FROM own)
            ORDER BY ALL
            """
        )
        chains = funding_chains(list(links.iter_rows()), self.household_accounts)
        of_wallet = dict(
            evidence.con.sql(
                "SELECT value, list(account_id ORDER BY account_id) FROM account_attrs WHERE kind = 'wallet' GROUP BY value"
            ).fetchall()
        ) if chains else {}  # fmt: skip
        stories = []
        for wallets, longest in chains:
            members = sorted({a for w in wallets for a in of_wallet.get(w, [])})
            stories.append((members, f"{len(members)} accounts staked one from another's wallet, a chain {longest} wallets long"))
        return _one_identity_rings(stories, "funding", "funding_chain", clusters)

    def _funding_tree_rings(self, evidence: Evidence, clusters: pl.DataFrame) -> pl.DataFrame:
        """Rings of more than ``household_accounts`` accounts whose stakes were paid through a tree
        of wallets of no account, three levels of them each funding two or more wallets
        (``funding_trees``), none of the accounts in a ring yet. Honest model: a parent pays its
        family's stakes from one wallet, an exchange or a firm's treasury pays many (a hub when it
        pays more than ``household_accounts``, left out), a customer withdraws to a wallet of its
        own and stakes from it: at most two such levels (an exchange paying parents who pay their
        children). Passing stakes down through layers of wallets that only fan tokens out is
        hiding who pays: a twenty-sixth network written by others paid a ring of 16 accounts
        (mailboxes and addresses of their own) through four levels, and no honest group of that
        network, four others written by others and twenty simulated reached three. Scored as one
        kind (``funding``), so held, never rejected, on this alone."""
        # only what a tree can be made of: links from wallets of no account that fund two to
        # household_accounts others (a hub is no link), with the accounts of each funded wallet
        rows = evidence.sql(
            """
            WITH e AS (SELECT DISTINCT funder_wallet AS funder, wallet AS funded FROM stake_events
                       WHERE _hour <= $epoch AND funder_wallet <> wallet),
            fans AS (SELECT funder FROM e GROUP BY funder HAVING count(*) BETWEEN 2 AND $household),
            hubs AS (SELECT funder FROM e GROUP BY funder HAVING count(*) > $household),
            own AS (SELECT value AS wallet, list(account_id ORDER BY account_id) AS accounts
                    FROM account_attrs WHERE kind = 'wallet' GROUP BY value)
            SELECT e.funder, e.funded, own.accounts FROM e LEFT JOIN own ON own.wallet = e.funded
            WHERE e.funder IN (SELECT funder FROM fans) AND e.funder NOT IN (SELECT wallet FROM own)
              AND e.funded NOT IN (SELECT funder FROM hubs)
            ORDER BY e.funder, e.funded
            """,
            household=self.household_accounts,
        )
        owners = {w: a for _, w, a in rows.iter_rows() if a is not None}
        links = [(f, w) for f, w, _ in rows.iter_rows()]
        stories = []
        for members, levels in funding_trees(links, owners, self.household_accounts):
            if at_own_domain(members, self._offices(evidence, [members]), self._rules()):
                continue  # an organisation paying its staff through divisions and departments, in the open
            stories.append(
                (members, f"{len(members)} accounts staked from a tree of wallets of no account, {levels} levels fanning out")
            )
        return _one_identity_rings(stories, "funding", "funding_tree", clusters)

    def _with_rota_rings(self, evidence: Evidence, clusters: pl.DataFrame) -> pl.DataFrame:
        """``clusters`` with a ring for each rota of ``min_accounts`` accounts or more (a machine,
        card or address its accounts held in turn: ``detectors.timeshare``'s ``timeshare_rotas``
        of the epoch) that no ring holds whole yet. Communities cannot be relied on to find such a
        group: four accounts tied only by their rota and a build are a clique too small for
        modularity, which merges it into whatever larger community a coincidence ties it to (four
        of an independently written network's six rotas of four came out as parts of communities
        of 28 to 83 accounts, and two rings of three were all the peel left of the six). A ring
        holding part of the rota and nobody else gives way to the rota; a ring that holds
        members beyond it keeps them, and the rota is left to ``timeshare``'s own evidence.
        Scored as one kind (strength 0.8): held, never rejected, on this alone."""
        rotas = evidence.sql(
            """
            SELECT kind, value, list(DISTINCT account_id ORDER BY account_id) AS members
            FROM timeshare_rotas WHERE epoch = $epoch GROUP BY kind, value
            HAVING count(DISTINCT account_id) >= $min ORDER BY kind, value
            """,
            min=self.min_accounts,
        )
        if not rotas.height:
            return clusters
        rings = {r["cluster_id"]: set(r["members"]) for r in clusters.filter(pl.col("is_sybil")).iter_rows(named=True)}
        dropped, rows = set(), []
        for r in rotas.iter_rows(named=True):
            group, kind = set(r["members"]), TURN_KIND_OF[r["kind"]]
            overlapping = {cid: m for cid, m in rings.items() if m & group and cid not in dropped}
            if any(m == group or m - group for m in overlapping.values()):
                continue  # found whole already, or its members belong to a larger ring
            dropped |= set(overlapping)
            members = sorted(group)
            what = {"host": "machine", "gpu_uuid": "card"}.get(r["kind"], "address")
            story = f"{len(members)} accounts held one {what} in turn (timeshare: {r['value']})"
            ev = {"story": story, "strong_kinds": [kind], "exclusive_kinds": [], "rota": True,
                  "links": [{"kind": kind, "pairs": len(members) * (len(members) - 1) // 2, "coverage": 1.0,
                             "example": r["value"], "accounts_holding_it": len(members)}], "accounts": members[:50]}  # fmt: skip
            rows.append({"cluster_id": cluster_id(members), "members": members, "score": KINDS[kind][0],
                         "is_sybil": True, "evidence": json.dumps(ev)})  # fmt: skip
            rings[cluster_id(members)] = group
        kept = clusters.filter(~pl.col("cluster_id").is_in(sorted(dropped)) | ~pl.col("is_sybil"))
        return pl.concat([kept, pl.DataFrame(rows, schema=kept.schema)], how="vertical_relaxed") if rows else kept

    def _without_coincidences(
        self, edges: pl.DataFrame, rings: pl.DataFrame, accounts: int, in_step: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """The ring members minus those tied by only ``min_strong_kinds`` operator kinds whose ties
        the outsiders would show more than ``member_chance`` times by chance
        (``membership_chance``): an honest account that shares a ring's coarsest mailbox shape
        and a restart bin is not named in it. A member that went silent with the others beyond
        chance (``in_step``: its ring's synchronized outage) is not a coincidence. The ring keeps
        its score and the count of such members (``coincidental_members``); its ``accounts`` list
        the rest."""
        chance = membership_chance(edges, rings, accounts)
        if in_step is None:
            in_step = pl.DataFrame(schema={"cluster_id": pl.String, "account_id": pl.String})
        rings = rings.join(chance, on=["cluster_id", "account_id"], how="left").join(
            in_step.with_columns(pl.lit(True).alias("in_step")), on=["cluster_id", "account_id"], how="left"
        )
        coincidental = (
            (pl.col("tie_kinds").list.len() <= self.min_strong_kinds)
            & (pl.col("chance").fill_null(0.0) > self.member_chance)
            & ~pl.col("in_step").fill_null(False)
        )
        return (
            rings.with_columns(coincidental.alias("coincidental"))
            .with_columns(pl.col("coincidental").sum().over("cluster_id").alias("coincidental_members"))
            .filter(~pl.col("coincidental"))
            .drop("coincidental", "chance", "in_step", "tie_kinds")
        )

    def score(self, evidence: Evidence) -> pl.DataFrame:
        found = evidence.sql(
            """
            WITH judged AS (
                SELECT f.device_id, f.account_id, c.score, c.cluster_id, c.evidence, n.members, coalesce(h.hours, 0) AS hours,
                       -- established: in a ring for confirm_hours of the window, tied to it by member_kinds operator kinds
                       -- of its own, and not all at one site: what one address's group shares (a funder, a build, a
                       -- machine) an office, a lab, a reseller's customers or a family share in the open
                       coalesce(h.hours, 0) >= $confirm
                         AND coalesce(json_array_length(c.evidence -> '$.member_strong_kinds'), 0) >= $member_kinds
                         AND NOT coalesce(json_extract_string(c.evidence, '$.site_mailboxes') = 'true', false) AS proven
                FROM device_features f
                JOIN sybil_clusters c ON c.account_id = f.account_id AND c.epoch = $epoch
                JOIN (SELECT cluster_id, count(*) AS members FROM sybil_clusters WHERE epoch = $epoch GROUP BY cluster_id) n
                  USING (cluster_id)
                LEFT JOIN (  -- epochs of the window this account sat in a cluster scoring >= reject_score
                    SELECT account_id, count(DISTINCT epoch) AS hours FROM sybil_clusters
                    WHERE epoch > hours_back($epoch, $window) AND epoch <= $epoch AND score >= $reject
                    GROUP BY account_id
                ) h ON h.account_id = f.account_id
                WHERE f.epoch = $epoch
            )
            SELECT device_id, account_id, score, CASE WHEN proven THEN 'reject' ELSE 'probation' END AS action,
                   format('account is one of {} in sybil cluster {}: {}', members, cluster_id,
                          json_extract_string(evidence, '$.story')) AS reason,
                   CAST(json_object('proof', CASE WHEN proven THEN 'statistical' ELSE 'suspicion' END,
                        'member_strong_kinds', evidence -> '$.member_strong_kinds',
                        'cluster_id', cluster_id, 'strong_kinds', evidence -> '$.strong_kinds',
                        'hours_in_a_ring', hours) AS VARCHAR) AS details
            FROM judged
            """,
            reject=self.reject_score,
            confirm=self.confirm_hours,
            window=self.window_hours,
            member_kinds=self.reject_member_kinds,
        )
        return found if found.height else pl.DataFrame(schema=SCORE_SCHEMA)


def _of_members(evidence: Evidence, cores: list[list[str]], sql: str, params: dict | None = None) -> list[tuple]:
    """Rows of ``sql`` over the communities' members, registered as ``community_members(account_id)``."""
    members = pl.DataFrame({"account_id": sorted({a for c in cores for a in c})}, schema={"account_id": pl.String})
    if not members.height:
        return []
    evidence.con.register("community_members", members.to_arrow())
    try:
        return evidence.con.execute(sql, params or {}).fetchall()
    finally:
        evidence.con.unregister("community_members")


def _member_kinds(edges: pl.DataFrame, rings: pl.DataFrame, min_accounts: int = 3) -> pl.DataFrame:
    """Per ring member: the operator kinds that tie it to other members of its own cluster, a kind
    that restates another left out: a mailbox's shape when the mailbox itself ties the member
    (``SOURCES``), and a stake burst on a link its funder makes too (``PAYMENT_KINDS``). One
    mailbox, or one funder's payment, shared with the ring is one fact, not two, for the reject
    rule. A mailbox shape counts only as scoring reads it (``score_clusters``): held at one
    domain by ``min_accounts`` or more members, not in pairs (strangers share coarse shapes so)
    nor read on any domain (``ANY_DOMAIN_SHAPE``: ``first.last`` of one length, a naming
    convention): two honest guild members, funded by the guild's treasury and paid to its vault,
    were rejected for such a shape as a third kind (a twenty-eighth network written by others).
    ``member_strong_kinds`` so, and ``tie_kinds`` with every shape that ties the member."""
    inside = ring_edges(edges.select("a", "b", "kinds", *(["links"] if "links" in edges.columns else [])), rings)
    every = inside.select("cluster_id", "a", "b", "kinds")
    strict = every
    if "links" in inside.columns:
        shapes = (
            inside.select("cluster_id", "a", "b", "links")
            .explode("links")
            .unnest("links")
            .filter((pl.col("kind") == "email_pattern") & ~pl.col("value").str.starts_with(ANY_DOMAIN_SHAPE))
        )
        held = (
            pl.concat([shapes.select("cluster_id", "value", pl.col(c).alias("account")) for c in ("a", "b")])
            .unique()
            .group_by("cluster_id", "value")
            .len()
            .filter(pl.col("len") >= min_accounts)
        )
        grouped = shapes.join(held, on=["cluster_id", "value"]).select("cluster_id", "a", "b").unique()
        strict = (
            every.join(grouped.with_columns(pl.lit(True).alias("grouped")), on=["cluster_id", "a", "b"], how="left")
            .with_columns(
                pl.when(pl.col("grouped").is_null())
                .then(pl.col("kinds").list.set_difference(pl.lit(["email_pattern"])))
                .otherwise(pl.col("kinds"))
                .alias("kinds")
            )
            .drop("grouped")
        )
    return _kinds_per_member(strict, "member_strong_kinds").join(
        _kinds_per_member(every, "tie_kinds"), on=["cluster_id", "account_id"], how="full", coalesce=True
    )


def _kinds_per_member(inside: pl.DataFrame, name: str) -> pl.DataFrame:
    """``cluster_id, account_id, <name>``: the strong kinds of each member's links inside its ring
    (``inside``: ``cluster_id, a, b, kinds``), a payment's stake burst and a mailbox's shape left out."""
    inside = inside.with_columns(
        pl.when(pl.col("kinds").list.contains(PAYMENT_KINDS[0]))
        .then(pl.col("kinds").list.set_difference(pl.lit([PAYMENT_KINDS[1]])))
        .otherwise(pl.col("kinds"))
        .alias("kinds")
    )
    return (
        pl.concat([inside.select("cluster_id", pl.col(side).alias("account_id"), "kinds") for side in ("a", "b")])
        .explode("kinds")
        .filter(pl.col("kinds").is_in(STRONG_KINDS))
        .group_by("cluster_id", "account_id")
        .agg(pl.col("kinds").unique().sort().alias(name))
        .with_columns(
            pl.col(name).list.eval(
                pl.element().filter(
                    ~pl.element().replace_strict(SOURCES, default=None).is_in(pl.element().implode()).fill_null(False)
                )
            )
        )
    )


def funding_chains(links: list[tuple[str, str]], household: int) -> list[tuple[list[str], int]]:
    """The groups of payout wallets linked by stake funding (``links``: funder, funded) that hold a
    chain of more than ``household`` wallets each funded by the one before, with that chain's
    length (a cycle's wallets count once). A wallet funding more than ``household`` others is a
    hub (an exchange, a treasury): no link of a chain."""
    graph = nx.DiGraph(links)
    graph.remove_nodes_from([w for w, out in graph.out_degree() if out > household])
    found = []
    for group in sorted(nx.weakly_connected_components(graph), key=min):
        if len(group) <= household:
            continue
        dag = nx.condensation(graph.subgraph(group))  # a cycle (tokens passed back round) is one node of its size
        longest: dict[int, int] = {}
        for node in nx.topological_sort(dag):
            size = len(dag.nodes[node]["members"])
            longest[node] = size + max((longest[p] for p in dag.predecessors(node)), default=0)
        if max(longest.values()) > household:
            found.append((sorted(group), max(longest.values())))
    return found


def funding_trees(
    links: list[tuple[str, str]], owners: dict[str, list[str]], household: int, levels: int = 3
) -> list[tuple[list[str], int]]:
    """Accounts paid through layered wallets: per group of wallets linked by stake funding
    (``links``: funder, funded; a wallet funding more than ``household`` others is a hub, no
    link), the accounts (``owners``: payout wallet -> its accounts) whose wallet was funded by a
    *fan-out* wallet (one of no account that funded two or more wallets), when the group holds
    more than ``household`` such accounts and a chain of at least ``levels`` fan-out wallets
    each funded by the one before; with the longest such chain."""
    graph = nx.DiGraph(links)
    graph.remove_nodes_from([w for w, out in graph.out_degree() if out > household])
    fan = {w for w, out in graph.out_degree() if out >= 2 and w not in owners}
    found = []
    for group in sorted(nx.weakly_connected_components(graph), key=min):
        paid = sorted({a for w in group if w in owners and any(f in fan for f in graph.predecessors(w)) for a in owners[w]})
        if len(paid) <= household:
            continue
        layers = nx.condensation(graph.subgraph(group & fan))  # tokens passed back round: one node
        deepest: dict[int, int] = {}
        for node in nx.topological_sort(layers):
            deepest[node] = len(layers.nodes[node]["members"]) + max((deepest[p] for p in layers.predecessors(node)), default=0)
        if (longest := max(deepest.values(), default=0)) >= levels:
            found.append((paid, longest))
    return found


def _one_identity_rings(groups: list[tuple[list[str], str]], kind: str, flag: str, clusters: pl.DataFrame) -> pl.DataFrame:
    """Rings of accounts that one identity (a mailbox, a payout wallet) puts behind one owner:
    ``sybil_clusters`` rows scored as that one kind (held, never rejected, on it alone), for the
    groups none of whose members is in a ring of ``clusters`` yet."""
    taken = set(clusters.filter(pl.col("is_sybil"))["members"].explode().to_list()) if clusters.height else set()
    rows = []
    for members, story in groups:
        if taken & set(members):
            continue
        ev = {"story": story, "strong_kinds": [kind], "exclusive_kinds": [], flag: True,
              "links": [{"kind": kind, "pairs": len(members) * (len(members) - 1) // 2, "coverage": 1.0,
                         "accounts_holding_it": len(members)}], "accounts": members[:50]}  # fmt: skip
        rows.append({"cluster_id": cluster_id(members), "members": members, "score": KINDS[kind][0],
                     "is_sybil": True, "evidence": json.dumps(ev)})  # fmt: skip
    schema = {"cluster_id": pl.String, "members": pl.List(pl.String), "score": pl.Float64, "is_sybil": pl.Boolean,
              "evidence": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)
