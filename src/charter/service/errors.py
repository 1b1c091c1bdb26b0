"""The service's errors: each carries Congress's HTTP status and error code.

Congress's clients read ``{"error": {"message", "error_code", "error_data"}}``; its codes
(1000-1022) are kept where Congress had one, otherwise the code is the HTTP status, as in
Congress's web service.
"""

from __future__ import annotations

from typing import Any

from charter.lang.errors import PolicyError

# Congress's application error codes (congress/exception.py).
RULE_SYNTAX = 1002
MULTIPLE_RULES = 1003
INCOMPLETE_SIMULATE_ARGS = 1004
SIMULATE_WITHOUT_POLICY = 1005
SIMULATE_ERROR = 1007
RULE_ALREADY_EXISTS = 1008
POLICY_NAME_MUST_BE_PROVIDED = 1010
POLICY_ID_MUST_NOT_BE_PROVIDED = 1015
EXECUTE_ERROR = 1016
SERVICE_ACTION_SYNTAX = 1017
EXECUTE_ACTION_ARGS_SYNTAX = 1018
RULE_NOT_PERMITTED = 1019
POLICY_NOT_EXIST = 1020
ABBREVIATION_TOO_LONG = 1022


class ServiceError(Exception):
    """A request the service refuses, with the status and code the API answers with."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 data: Any = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code if code is not None else self.status
        self.data = data

    def to_json(self) -> dict:
        return {"error": {"message": self.message, "error_code": self.code,
                          "error_data": self.data}}


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Unavailable(ServiceError):
    """The store or a service cannot be reached; the request may be retried."""

    status = 503


_POLICY_CODES = {
    "multiple_rules": MULTIPLE_RULES,
    "rule_already_exists": RULE_ALREADY_EXISTS,
}


def rule_error(err: PolicyError, what: str = "rule") -> ServiceError:
    """A PolicyError as Congress reported it: 400 rule_syntax (409 for a duplicate rule).

    The diagnostics go in ``error_data`` so clients can point at the line and column.
    """
    codes = {d.code for d in err.errors}
    code = RULE_SYNTAX
    for name, number in _POLICY_CODES.items():
        if name in codes:
            code = number
    status = 409 if code == RULE_ALREADY_EXISTS else 400
    data = [d.to_json() for d in err.diagnostics]
    return ServiceError(f"invalid {what}: {err.summary()}", status=status, code=code, data=data)
