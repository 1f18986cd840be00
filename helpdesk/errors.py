"""Domain errors raised by services, mapped to HTTP responses by the web layer."""


class DomainError(Exception):
    """A rule of the helpdesk was broken; the message is safe to show to the user."""

    status_code = 400

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The object does not exist, or the acting user may not see it."""

    status_code = 404


class Forbidden(DomainError):
    """The acting user may see the object but not perform this action."""

    status_code = 403


class InvalidTransition(DomainError):
    """A ticket status change that the workflow does not allow."""

    status_code = 409


class Conflict(DomainError):
    """The object changed since it was loaded."""

    status_code = 409
