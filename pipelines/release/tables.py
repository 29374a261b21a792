"""What the public release holds per epoch: one SQL query per table over the pipeline's database.

Every query runs on a connection where ``pseudonymize.register`` has defined the macros, and
takes ``$epoch``. Identifiers are keyed (``pseudo``), IPs generalized (``ip_prefix``), emails
reduced to a class; wallets follow the release policy (``wallet_out``). Free text (reasons,
evidence) is rewritten afterwards by ``privacy.rewrite_text`` with the same mapping.

``reward_inputs``, ``stake_positions`` and ``reward_pool`` carry every input of the allocation
(``pipelines.rewards``) so that ``recompute.recompute_allocations`` reproduces
``reward_allocations`` from the release alone. The allocation breaks ties by raw device id and
wallet; pseudonyms do not keep that order, so the release carries it as ``device_order`` and
``wallet_order`` (ranks within the epoch, nothing more).
"""

from __future__ import annotations

TABLES: dict[str, str] = {
    "pow_challenges": """
        SELECT p._hour AS epoch, p.challenge_id, p.batch_id, pseudo('device', p.device_id) AS device_id, p.kind,
               p.issued_at, p.responded_at, p.status, p.n, p.seed, p.compute_ms, p.result_digest, p.samples,
               c.samples_total, c.samples_bad, c.first_bad, x.tflops AS measured_tflops, x.batch_siblings
        FROM pow p
        LEFT JOIN pow_checks c ON c.challenge_id = p.challenge_id AND c._hour = p._hour
        LEFT JOIN challenge_context x ON x.epoch = p._hour AND x.challenge_id = p.challenge_id
        WHERE p._hour = $epoch
        ORDER BY p.challenge_id""",
    "uptime": """
        SELECT _hour AS epoch, ts, pseudo('device', device_id) AS device_id, source, ok, latency_ms
        FROM uptime WHERE _hour = $epoch ORDER BY device_id, ts, source""",
    "hardware": """
        SELECT _hour AS epoch, ts, pseudo('device', device_id) AS device_id, pseudo('account', account_id) AS account_id,
               pseudo('host', host_fingerprint) AS host_fingerprint, ip_prefix(ip) AS ip_prefix, asn, country, os,
               worker_version, gpu_index, gpu_model, pseudo('gpu', gpu_uuid) AS gpu_uuid,
               pseudo('serial', gpu_serial) AS gpu_serial, pci_bus_id, vram_total_mb, driver_version, cuda_version,
               virtualization_mode, mig_mode, power_limit_w, sm_clock_max_mhz, cpu_model, cpu_cores, ram_gb,
               bandwidth_down_mbps, bandwidth_up_mbps
        FROM hardware WHERE _hour = $epoch ORDER BY device_id, ts""",
    "accounts": """
        SELECT _hour AS epoch, pseudo('account', account_id) AS account_id, created_at, email_class(email) AS email_class,
               email_domain(email) AS email_domain, wallet_out(wallet) AS wallet,
               ip_prefix(signup_ip) AS signup_ip_prefix, pseudo('account', referrer_account_id) AS referrer_account_id
        FROM accounts WHERE _hour = $epoch ORDER BY account_id""",
    "stake_events": """
        SELECT _hour AS epoch, event_id, ts, wallet_out(wallet) AS wallet, pseudo('device', device_id) AS device_id, kind,
               CAST(amount_io * 100000000 AS BIGINT) AS amount_base_units, wallet_out(funder_wallet) AS funder_wallet
        FROM stake_events WHERE _hour = $epoch ORDER BY event_id""",
    "jobs": """
        SELECT _hour AS epoch, job_id, pseudo('account', client_account_id) AS client_account_id,
               pseudo('device', device_id) AS device_id, created_at, started_at, ended_at, status,
               CAST(paid_usd AS VARCHAR) AS paid_usd
        FROM jobs WHERE _hour = $epoch ORDER BY job_id""",
    "external_listings": """
        SELECT _hour AS epoch, ts, network, pseudo('gpu', gpu_uuid) AS gpu_uuid,
               pseudo('host', host_fingerprint) AS host_fingerprint, ip_prefix(ip) AS ip_prefix
        FROM external_listings WHERE _hour = $epoch ORDER BY ts, network""",
    "device_tiers": """
        SELECT epoch, pseudo('device', device_id) AS device_id, pseudo('account', account_id) AS account_id, tier,
               fraud_types, score, CAST(reasons AS VARCHAR) AS reasons
        FROM device_tiers WHERE epoch = $epoch ORDER BY device_id""",
    "sybil_clusters": """
        SELECT epoch, pseudo('cluster', cluster_id) AS cluster_id, pseudo('account', account_id) AS account_id, score, CAST(evidence AS VARCHAR) AS evidence
        FROM sybil_clusters WHERE epoch = $epoch ORDER BY cluster_id, account_id""",
    "reward_inputs": """
        SELECT epoch, pseudo('device', device_id) AS device_id, pseudo('account', account_id) AS account_id,
               wallet_out(wallet) AS wallet, tier, measured_class, measured_tflops, multiplier_bp4, tier_bp4,
               connectivity_bp4, down_mbps, uptime_permille, hired_permille, up_hours, pow_passed, stake_units,
               stake_needed, status, reason, weight,
               CAST(row_number() OVER (ORDER BY device_id) AS BIGINT) AS device_order
        FROM reward_eligibility WHERE epoch = $epoch ORDER BY device_id""",
    "stake_positions": """
        SELECT epoch, pseudo('device', device_id) AS device_id, wallet_out(wallet) AS wallet, active_units, cooling_units,
               CAST(row_number() OVER (PARTITION BY device_id ORDER BY wallet) AS BIGINT) AS wallet_order
        FROM stake_positions WHERE epoch = $epoch ORDER BY device_id, wallet""",
    "reward_pool": """
        SELECT epoch, policy_version, pool_units, allocated_units, held_units, undistributed_units,
               $scale AS scale, $operator_share_bp4 AS operator_share_bp4, $hired_bonus_bp4 AS hired_bonus_bp4,
               $min_up AS min_continuous_uptime_hours, $stake_required AS stake_required, $probation AS probation,
               $standard AS standard
        FROM epoch_pools WHERE epoch = $epoch""",
    "reward_allocations": """
        SELECT epoch, pseudo('device', device_id) AS device_id, pseudo('account', account_id) AS account_id,
               wallet_out(wallet) AS wallet, amount_base_units, weight, CAST(components AS VARCHAR) AS components
        FROM reward_allocations WHERE epoch = $epoch ORDER BY device_id, wallet""",
    "held_settlements": """
        SELECT settled_epoch AS epoch, held_epoch, pseudo('device', device_id) AS device_id,
               pseudo('account', account_id) AS account_id, wallet_out(wallet) AS wallet, amount_base_units, outcome
        FROM held_rewards WHERE settled_epoch = $epoch ORDER BY held_epoch, device_id, wallet""",
    "slashing_events": """
        SELECT incident_id, epoch, pseudo('device', device_id) AS device_id, pseudo('account', account_id) AS account_id,
               wallet_out(wallet) AS wallet, amount_base_units, reason, CAST(evidence AS VARCHAR) AS evidence, status
        FROM slashing_events WHERE epoch = $epoch ORDER BY incident_id""",
}
"""Table name -> query. Not published: the challenge plan (it would tell cheaters which
siblings are challenged together next hour) and anything from quarantine (raw rows)."""

POLICY_PARAMETERS = ("scale", "operator_share_bp4", "hired_bonus_bp4", "min_up", "stake_required", "probation", "standard")
"""The ``reward_pool`` query's parameters besides ``$epoch`` (from the reward policy version)."""

IDENTIFIERS_SQL = """
WITH raw(kind, value) AS (
    SELECT 'device', device_id FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'account', account_id FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'host', host_fingerprint FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'gpu', gpu_uuid FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'serial', gpu_serial FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'ip', ip FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'device', device_id FROM pow WHERE _hour = $epoch
    UNION SELECT 'device', device_id FROM stake_events WHERE _hour <= $epoch
    UNION SELECT 'device', device_id FROM jobs WHERE _hour <= $epoch
    UNION SELECT 'account', client_account_id FROM jobs WHERE _hour <= $epoch
    UNION SELECT 'account', account_id FROM accounts WHERE _hour <= $epoch
    UNION SELECT 'account', referrer_account_id FROM accounts WHERE _hour <= $epoch
    UNION SELECT 'email', email FROM accounts WHERE _hour <= $epoch
    UNION SELECT 'ip', signup_ip FROM accounts WHERE _hour <= $epoch
    UNION SELECT 'gpu', gpu_uuid FROM external_listings WHERE _hour <= $epoch
    UNION SELECT 'host', host_fingerprint FROM external_listings WHERE _hour <= $epoch
    UNION SELECT 'ip', ip FROM external_listings WHERE _hour <= $epoch
    UNION SELECT 'cluster', cluster_id FROM sybil_clusters WHERE epoch BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT 'wallet', wallet FROM accounts WHERE $keyed_wallets AND _hour <= $epoch
    UNION SELECT 'wallet', wallet FROM stake_events WHERE $keyed_wallets AND _hour <= $epoch
    UNION SELECT 'wallet', funder_wallet FROM stake_events WHERE $keyed_wallets AND _hour <= $epoch
)
SELECT kind, value,
       CASE kind WHEN 'ip' THEN ip_prefix(value) WHEN 'email' THEN '<' || email_class(value) || '>'
                 ELSE pseudo(kind, value) END AS replacement
FROM raw WHERE value IS NOT NULL AND length(value) >= 4
UNION  -- an IPv6 address's /64, as the detectors and the sybil graph name a site (ip_site), is finer than its /48
SELECT 'ip', ip_site(ip), ip_prefix(ip) FROM (
    SELECT ip FROM hardware WHERE _hour BETWEEN hours_back($epoch, $lookback) AND $epoch
    UNION SELECT signup_ip FROM accounts WHERE _hour <= $epoch
) WHERE contains(ip, ':') AND NOT contains(ip, '.') AND ip_prefix(ip) <> 'unparsable'
ORDER BY length(value) DESC, value
"""
"""Every raw identifier the epoch's text could mention, with what replaces it: the mapping for
``rewrite_text`` and the dictionary for the privacy scan. Hardware identifiers come from a
lookback window (``$lookback`` hours); the small feeds from all history. An IPv6 address's /64
(``ip_site``: how the detectors and the sybil graph name one LAN in their evidence) is replaced
by the address's public /48 too."""
