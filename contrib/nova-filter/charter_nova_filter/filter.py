"""``CharterFilter``: a Nova host filter that asks Charter which hosts a request may land on.

Nova runs a filter host by host; this one overrides ``filter_all`` to ask Charter once for
all candidate hosts of a request (``POST /v1/decisions/nova/{policy}``), and runs again for
each server of a multi-server request (Nova adds the hosts picked so far to the request's
group hosts, which an anti-affinity rule reads). Options: nova.conf's ``[charter]``.
"""

from __future__ import annotations

from nova.scheduler import filters
from oslo_config import cfg
from oslo_log import log as logging

from charter_nova_filter.client import CharterClient, Settings, spec_fields

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

OPTS = [
    cfg.StrOpt("url", help="Charter's address, e.g. http://127.0.0.1:1789"),
    cfg.StrOpt("policy", default="nova_hosts",
               help="the decision policy whose deny_host(host, reason) rows refuse hosts"),
    cfg.FloatOpt("timeout", default=5.0, min=0.1, help="seconds to wait for Charter"),
    cfg.StrOpt("fail", default="closed", choices=["closed", "open"],
               help="when Charter cannot answer (or cannot evaluate the policy): closed "
                    "refuses every host, open passes them all"),
    cfg.StrOpt("ca_file", help="CA bundle to verify Charter's HTTPS certificate"),
    cfg.StrOpt("cert_file", help="client certificate for Charter (with key_file)"),
    cfg.StrOpt("key_file", help="client certificate's key"),
    cfg.StrOpt("token", secret=True, help="a Charter API token (X-Auth-Token); not needed "
               "when Charter serves decisions anonymously"),
]
CONF.register_opts(OPTS, group="charter")


class CharterFilter(filters.BaseHostFilter):
    """Passes the hosts Charter's decision policy does not refuse."""

    RUN_ON_REBUILD = False
    run_filter_once_per_request = False  # each server of a request sees the hosts picked

    def __init__(self) -> None:
        self._client: CharterClient | None = None

    def _charter(self) -> CharterClient:
        if self._client is None:
            c = CONF.charter
            self._client = CharterClient(Settings(
                url=c.url, policy=c.policy, timeout=c.timeout, fail=c.fail, ca_file=c.ca_file,
                cert_file=c.cert_file, key_file=c.key_file, token=c.token))
        return self._client

    def filter_all(self, filter_obj_list, spec_obj):
        states = list(filter_obj_list)
        if not states:
            return states
        from nova.scheduler import utils  # as BaseHostFilter does: not at import time

        if not self.RUN_ON_REBUILD and utils.request_is_rebuild(spec_obj):
            return states
        spec = spec_fields(spec_obj)
        answer = self._charter().hosts(spec, [s.host for s in states])
        for host, reasons in answer.refused.items():
            LOG.info("CharterFilter: host %s refused for instance %s: %s", host,
                     spec.get("instance_uuid"), "; ".join(reasons))
        passed = set(answer.hosts)
        return [s for s in states if s.host in passed]

    def host_passes(self, host_state, spec_obj) -> bool:
        return bool(self.filter_all([host_state], spec_obj))
