"""Fixtures shared by the CI tests: the loopback provider servers live in ``ci_fakes``."""

from ci_fakes import _api_server, _cdn_server, api, cdn, sleeps  # noqa: F401
