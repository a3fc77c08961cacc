//! Cell formatting shared by the printers: names, ages, label maps, label selectors,
//! container lists and the "a,b,c + 2 more..." lists, each as upstream renders it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::duration::since;

/// The object's `metadata.name`, or empty.
pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The `Age` cell: time since `metadata.creationTimestamp`.
pub fn age(metadata: &ObjectMeta, now: Timestamp) -> Value {
    Value::from(time_since(metadata.creation_timestamp.as_ref(), now))
}

/// Time since an optional timestamp, `<unknown>` without one.
pub fn time_since(time: Option<&Time>, now: Timestamp) -> String {
    since(time.map(|t| t.0), now)
}

/// `a=1,b=2` sorted by key, `<none>` when empty (upstream's `labels.FormatLabels`).
pub fn labels(map: Option<&BTreeMap<String, String>>) -> String {
    let text = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    none_if_empty(text)
}

/// A label selector in the selector language (`app=web,tier in (a,b)`), requirements
/// sorted by key; empty for a missing or empty selector (upstream's `Selector.String()`).
pub fn selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut requirements: Vec<(&str, String)> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), format!("{k}={v}")))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let key = expr.key.as_str();
        let mut values = expr.values.clone().unwrap_or_default();
        values.sort();
        values.dedup();
        let text = match expr.operator.as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        };
        requirements.push((key, text));
    }
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(",")
}

/// [`selector`], but `<none>` when empty (upstream's `FormatLabelSelector`).
pub fn label_selector(s: Option<&LabelSelector>) -> String {
    none_if_empty(selector(s))
}

/// The container names and the images of a pod template, each comma-separated.
pub fn containers(containers: &[Container]) -> (String, String) {
    let names = containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>();
    let images = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or_default())
        .collect::<Vec<_>>();
    (names.join(","), images.join(","))
}

/// `True`, `False` or `<unset>`.
pub fn bool_ptr(value: Option<bool>) -> String {
    match value {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// At most `max` entries joined by commas, then ` + N more...`; `<unset>` when empty.
pub fn list_with_more(items: impl IntoIterator<Item = String>, max: usize) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

/// `<none>` for an empty string.
pub fn none_if_empty(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_read_like_kubectl() {
        assert_eq!(selector(None), "");
        assert_eq!(label_selector(None), "<none>");
        let s = LabelSelector {
            match_labels: Some([("tier".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "dev".into()]),
                },
                LabelSelectorRequirement {
                    key: "zone".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: "app".into(),
                    operator: "Exists".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(selector(Some(&s)), "app,env in (dev,prod),tier=web,!zone");
    }

    #[test]
    fn labels_and_lists() {
        assert_eq!(labels(None), "<none>");
        let map: BTreeMap<_, _> =
            [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into();
        assert_eq!(labels(Some(&map)), "a=1,b=2");
        let five = (1..=5).map(|i| i.to_string());
        assert_eq!(list_with_more(five, 3), "1,2,3 + 2 more...");
        assert_eq!(list_with_more(Vec::new(), 3), "<unset>");
        assert_eq!(bool_ptr(Some(false)), "False");
    }
}
