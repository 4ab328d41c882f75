//! Reading the engine's observations off Kubernetes objects that are not workloads: a manual
//! request from the Canary's annotations. (A workload's revision and rollout state are the
//! workload seam's: `super::target`.) Pure: the controller fetches, these functions translate.

use std::collections::BTreeMap;

use crate::engine::ManualRequest;

/// Annotation carrying a manual request: promote, step, abort, retry, pause, resume.
pub const REQUEST_ANNOTATION: &str = "serin.dev/request";
/// Annotation making a request unique, so each is acted on once.
pub const REQUEST_ID_ANNOTATION: &str = "serin.dev/request-id";

/// The manual request on a Canary, if its annotations carry one.
pub fn request(annotations: &BTreeMap<String, String>) -> Option<ManualRequest> {
    let action = annotations.get(REQUEST_ANNOTATION)?;
    Some(ManualRequest::parse(
        action,
        annotations.get(REQUEST_ID_ANNOTATION).map(String::as_str),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::input::RequestAction;

    #[test]
    fn reads_manual_requests_with_and_without_an_id() {
        let with_id = BTreeMap::from([
            (REQUEST_ANNOTATION.to_string(), "promote".to_string()),
            (REQUEST_ID_ANNOTATION.to_string(), "1700000000".to_string()),
        ]);
        let request = request(&with_id).unwrap();
        assert_eq!(request.action, Ok(RequestAction::Promote));
        assert_eq!(request.id, "1700000000");
        let bare = BTreeMap::from([(REQUEST_ANNOTATION.to_string(), "pause".to_string())]);
        assert_eq!(super::request(&bare).unwrap().id, "pause");
        assert!(super::request(&BTreeMap::new()).is_none());
    }
}
