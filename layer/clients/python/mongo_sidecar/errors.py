"""The one exception the client raises, and the Server-Timing header's reader."""


class MongoSidecarError(Exception):
    """A failed call.

    For an answer from the sidecar: ``status`` is the HTTP status, ``code`` its ``error_code``
    (InvalidParameter, InvalidSession, DuplicateKey, Warming, WriteOutcomeUnknown, ...),
    ``server_code`` and ``code_name`` MongoDB's own error code and name when the database refused
    the operation, ``body`` the whole error body, ``retry_after`` the Retry-After seconds, if any,
    and ``server_timing`` the answer's Server-Timing as {name: milliseconds}, if it had one.
    When the sidecar could not be reached, broke the connection or did not answer in time,
    ``status`` is 0 and ``code`` is ``SidecarUnreachable`` or ``ClientTimeout``, with the
    underlying error as ``__cause__``.

    ``outcome`` says what is known of a write that failed: "unknown" (it may or may not have
    been applied: never retried by the client), "applied" (applied, though not acknowledged as
    asked), or None (not applied, or not a write).
    """

    def __init__(self, message, status=0, code=None, server_code=None, code_name=None, body=None,
                 retry_after=None, outcome=None, server_timing=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.server_code = server_code
        self.code_name = code_name
        self.body = body
        self.retry_after = retry_after
        self.outcome = outcome
        self.server_timing = server_timing

    @classmethod
    def from_response(cls, action, status, body, retry_after=None, server_timing=None):
        """From a non-200 answer; ``body`` is the parsed JSON body, or the text if it was not JSON."""
        fields = body if isinstance(body, dict) else {}
        message = fields.get("error") if isinstance(fields.get("error"), str) else f"HTTP {status}"
        server_code = fields.get("code")
        code_name = fields.get("codeName")
        outcome = fields.get("outcome")
        return cls(
            f"{action}: {message}",
            status=status,
            code=fields.get("error_code") if isinstance(fields.get("error_code"), str) else f"HTTP{status}",
            server_code=server_code if isinstance(server_code, int) else None,
            code_name=code_name if isinstance(code_name, str) else None,
            body=body,
            retry_after=retry_after,
            outcome=outcome if isinstance(outcome, str) else None,
            server_timing=server_timing,
        )


def parse_server_timing(header):
    """``queue;dur=0.012, db;dur=0.412, total;dur=0.520`` as {"queue": 0.012, "db": 0.412,
    "total": 0.52} (milliseconds). Metrics without a readable ``dur`` are left out; None when
    there is no header or nothing in it could be read."""
    if not header:
        return None
    timing = {}
    for metric in header.split(","):
        name, *params = metric.split(";")
        name = name.strip()
        for param in params:
            key, _, value = param.partition("=")
            if name and key.strip().lower() == "dur":
                try:
                    timing[name] = float(value.strip().strip('"'))
                except ValueError:
                    pass
                break
    return timing or None
