"""A timed-out read and a timed-out write need different advice."""

from bot.cad.codes import CallOrigin, CallStatus
from bot.cad.errors import CadTimeoutError
from bot.cad.models import DispatchCall


def test_timed_out_read_just_says_try_again() -> None:
    error = CadTimeoutError("no answer", request_type="LOOKUP")
    assert "try again" in error.user_message
    assert "already be done" not in error.user_message


def test_timed_out_write_warns_it_may_have_happened() -> None:
    error = CadTimeoutError("no answer", request_type="CALL_911")
    assert "already be done" in error.user_message


def test_value_zero_enum_members_have_labels() -> None:
    call = DispatchCall.model_validate(
        {"callId": 1, "status": CallStatus.PENDING, "origin": CallOrigin.CALLER}
    )
    assert call.status_label == CallStatus.PENDING.label
    assert call.origin_label == CallOrigin.CALLER.label
