"""Which channel category each push event type is posted to."""

from __future__ import annotations

from collections.abc import Mapping

from bot.cad import events as ev
from bot.storage.models import Category

_CATEGORY_BY_CLASS: Mapping[type[ev.PushEvent], Category] = {
    ev.Emergency911Event: Category("911"),
    ev.Remove911Event: Category("911"),
    ev.UnitPanicEvent: Category("panic"),
    ev.DispatchNewEvent: Category("dispatch"),
    ev.DispatchEditEvent: Category("dispatch"),
    ev.DispatchClosedEvent: Category("dispatch"),
    ev.DispatchNoteEvent: Category("dispatch"),
    ev.DispatchUnitAttachEvent: Category("dispatch"),
    ev.DispatchUnitDetachEvent: Category("dispatch"),
    ev.DispatchBodycamEvent: Category("dispatch"),
    ev.UnitLoginEvent: Category("units"),
    ev.UnitLogoutEvent: Category("units"),
    ev.UnitStatusEvent: Category("units"),
    ev.UnitGroupAddEvent: Category("units"),
    ev.UnitGroupRemoveEvent: Category("units"),
    ev.UnitGroupRenameEvent: Category("units"),
    ev.UnitUpdateEvent: Category("units"),
    ev.RecordAddEvent: Category("records"),
    ev.RecordEditEvent: Category("records"),
    ev.RecordRemoveEvent: Category("records"),
    ev.StreetSignUpdatedEvent: Category("other"),
    ev.ToneEvent: Category("other"),
    ev.NewCalloutEvent: Category("other"),
    ev.StationAlertEvent: Category("other"),
    ev.PagerEvent: Category("other"),
    ev.CharacterSelectedEvent: Category("other"),
    ev.CommunityLinkVerifiedEvent: Category("other"),
}


def category_for(event: ev.PushEvent | type[ev.PushEvent] | str) -> Category:
    """The category an event (or event class, or type string) is routed to; unknown types go to ``other``."""
    if isinstance(event, str):
        event_class = ev.event_class_for(event)
        if event_class is None:
            return Category("other")
        return _CATEGORY_BY_CLASS.get(event_class, Category("other"))
    event_class = event if isinstance(event, type) else type(event)
    return _CATEGORY_BY_CLASS.get(event_class, Category("other"))
