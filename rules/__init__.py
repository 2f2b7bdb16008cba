"""Pure domain logic of shian: events, config, calendar, rules. No I/O lives here."""
