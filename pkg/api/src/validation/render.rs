//! Bad values as upstream prints them in a message. The API server cairn speaks for (1.33)
//! formats a non-scalar value with Go's `%#v` on its internal type, so a label map reads
//! `map[string]string{"app":"x"}` and a selector `v1.LabelSelector{MatchLabels:…}`; users
//! and tools match on these strings, so they are reproduced here for the values validation
//! reports.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::quote;

/// A string map: `map[string]string{"a":"1", "b":"2"}`, or `map[string]string(nil)`.
pub fn string_map(map: Option<&BTreeMap<String, String>>) -> String {
    match map {
        None => "map[string]string(nil)".to_string(),
        Some(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
                .collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    }
}

/// A string list: `[]string{"a", "b"}`, or `[]string(nil)`.
pub fn strings(list: Option<&[String]>) -> String {
    match list {
        None => "[]string(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list.iter().map(|s| quote(s)).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// A label selector: `v1.LabelSelector{MatchLabels:map[string]string{"app":"x"},
/// MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
pub fn label_selector(selector: &LabelSelector) -> String {
    let expressions = match &selector.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list.iter().map(requirement).collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        string_map(selector.match_labels.as_ref())
    )
}

fn requirement(r: &LabelSelectorRequirement) -> String {
    format!(
        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
        quote(&r.key),
        quote(&r.operator),
        strings(r.values.as_deref())
    )
}

/// An int-or-string: `intstr.IntOrString{Type:0, IntVal:1, StrVal:""}` or
/// `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`.
pub fn int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                quote(s)
            )
        }
    }
}

/// A taint: `core.Taint{Key:"k", Value:"v", Effect:"NoSchedule", TimeAdded:<nil>}`.
pub fn taint(t: &Taint) -> String {
    let added = match &t.time_added {
        None => "<nil>".to_string(),
        Some(time) => quote(&time.0.to_string()),
    };
    format!(
        "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{added}}}",
        quote(&t.key),
        quote(t.value.as_deref().unwrap_or_default()),
        quote(&t.effect)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_go_prints_them() {
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "x".to_string()),
            ("b".into(), "y".into()),
        ]
        .into();
        assert_eq!(
            string_map(Some(&labels)),
            r#"map[string]string{"app":"x", "b":"y"}"#
        );
        let selector = LabelSelector {
            match_labels: Some([("app".to_string(), "nginx2".to_string())].into()),
            match_expressions: None,
        };
        assert_eq!(
            label_selector(&selector),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        let expressions = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["web".into()]),
            }]),
        };
        assert_eq!(
            label_selector(&expressions),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string{"web"}}}}"#
        );
        assert_eq!(
            int_or_string(&IntOrString::Int(0)),
            r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#
        );
        assert_eq!(strings(Some(&["None".to_string()])), r#"[]string{"None"}"#);
    }
}
