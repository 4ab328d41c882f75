//! A server-sent event stream (`text/event-stream`, the WHATWG HTML standard's format) split
//! into its events: SignalFlow answers a computation run over HTTP as one. The text is an answer
//! already read within the provider's size limit; the events borrow from it (no copy unless an
//! event's data spans several lines).
//!
//! Only what a finite answer needs: `event` and `data` fields; comments, `id` and `retry` are
//! skipped. An event is dispatched at its blank line, so an answer cut off mid-event loses that
//! event, which a provider notices as a missing end-of-stream event.

use std::borrow::Cow;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event` field; `message` when there is none (the standard's default).
    pub name: &'a str,
    /// The `data` lines, joined with line feeds.
    pub data: Cow<'a, str>,
}

/// The events of `text`, in order.
pub fn events(text: &str) -> Vec<Event<'_>> {
    let mut events = Vec::new();
    let mut name: Option<&str> = None;
    let mut data: Option<Cow<'_, str>> = None;
    for line in lines(text) {
        if line.is_empty() {
            // The standard dispatches only events with data.
            if let Some(data) = data.take() {
                events.push(Event {
                    name: name.unwrap_or("message"),
                    data,
                });
            }
            name = None;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value),
            "data" => {
                data = Some(match data {
                    None => Cow::Borrowed(value),
                    Some(before) => Cow::Owned(format!("{before}\n{value}")),
                })
            }
            _ => {}
        }
    }
    events
}

/// Lines ended by CRLF, LF or CR, as the standard reads them; a last line without an end is
/// no whole line and never ends an event.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let end = rest.find(['\r', '\n'])?;
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_at_blank_lines_with_multi_line_data_joined() {
        let text = ": comment\r\nevent: control-message\r\ndata: {\"event\":\r\ndata:\"STREAM_START\"}\r\n\r\ndata: plain\n\nevent: no-data\n\nevent: data\rdata: 1\r\r";
        let found = events(text);
        assert_eq!(
            found,
            vec![
                Event {
                    name: "control-message",
                    data: "{\"event\":\n\"STREAM_START\"}".into()
                },
                Event {
                    name: "message",
                    data: "plain".into()
                },
                Event {
                    name: "data",
                    data: "1".into()
                },
            ]
        );
    }

    #[test]
    fn an_event_cut_off_before_its_blank_line_is_not_dispatched() {
        assert_eq!(events("event: data\ndata: {\"a\":1}\n").len(), 0);
        assert_eq!(events("event: data\ndata: {\"a\":1}").len(), 0);
        assert_eq!(events("<html>Bad Gateway</html>").len(), 0);
    }
}
