"""The one exception the client raises."""


class MongoSidecarError(Exception):
    """A failed call.

    For an answer from the sidecar: ``status`` is the HTTP status, ``code`` its ``error_code``
    (InvalidParameter, InvalidSession, DuplicateKey, Warming, ...), ``server_code`` and
    ``code_name`` MongoDB's own error code and name when the database refused the operation,
    ``body`` the whole error body and ``retry_after`` the Retry-After seconds, if any.
    When the sidecar could not be reached or did not answer in time, ``status`` is 0 and ``code``
    is ``SidecarUnreachable`` or ``ClientTimeout``, with the underlying error as ``__cause__``.
    """

    def __init__(self, message, status=0, code=None, server_code=None, code_name=None, body=None,
                 retry_after=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.server_code = server_code
        self.code_name = code_name
        self.body = body
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, action, status, body, retry_after=None):
        """From a non-200 answer; ``body`` is the parsed JSON body, or the text if it was not JSON."""
        fields = body if isinstance(body, dict) else {}
        message = fields.get("error") if isinstance(fields.get("error"), str) else f"HTTP {status}"
        server_code = fields.get("code")
        code_name = fields.get("codeName")
        return cls(
            f"{action}: {message}",
            status=status,
            code=fields.get("error_code") if isinstance(fields.get("error_code"), str) else f"HTTP{status}",
            server_code=server_code if isinstance(server_code, int) else None,
            code_name=code_name if isinstance(code_name, str) else None,
            body=body,
            retry_after=retry_after,
        )
