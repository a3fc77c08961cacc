//! The string rules of Kubernetes names: DNS-1123 subdomains and labels, DNS-1035 labels,
//! qualified names (label and annotation keys) and label values, each answering with
//! upstream's exact messages, and which rule a resource's object names follow.
//!
//! A check returns the problems it found, in upstream's words; an empty list means the value
//! is valid. Turning problems into API `Invalid` causes is `validation`'s job.

use crate::Resource;

/// The longest DNS-1123 label, DNS-1035 label and name part of a qualified name.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// The longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// The longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// The problems with `value` as a DNS-1123 label (`my-name`): at most 63 characters of
/// `[a-z0-9-]`, starting and ending alphanumeric.
pub fn check_dns1123_label(value: &str) -> Vec<String> {
    let mut problems = max_len_problem(value, DNS1123_LABEL_MAX_LENGTH);
    if !is_dns1123_label_shape(value) {
        if is_dns1123_subdomain_shape(value) {
            // A valid subdomain that is not a valid label can only be wrong by its dots.
            problems.push("must not contain dots".to_string());
        } else {
            problems.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    problems
}

/// The problems with `value` as a DNS-1123 subdomain (`example.com`): at most 253 characters,
/// dot-separated DNS-1123 labels.
pub fn check_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut problems = max_len_problem(value, DNS1123_SUBDOMAIN_MAX_LENGTH);
    if !is_dns1123_subdomain_shape(value) {
        problems.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    problems
}

/// The problems with `value` as a DNS-1035 label (`my-name`): like a DNS-1123 label but
/// starting with a letter.
pub fn check_dns1035_label(value: &str) -> Vec<String> {
    let mut problems = max_len_problem(value, DNS1123_LABEL_MAX_LENGTH);
    if !is_dns1035_label_shape(value) {
        problems.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    problems
}

/// The problems with `value` as a qualified name, the shape of label and annotation keys:
/// an optional DNS-1123 subdomain prefix and `/`, then a name of at most 63 characters of
/// `[-A-Za-z0-9_.]` starting and ending alphanumeric (`example.com/MyName`).
pub fn check_qualified_name(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                qualified_name_regex_error()
            )];
        }
    };
    let mut problems = Vec::new();
    match prefix {
        Some("") => problems.push("prefix part must be non-empty".to_string()),
        Some(prefix) => problems.extend(
            check_dns1123_subdomain(prefix)
                .into_iter()
                .map(|p| format!("prefix part {p}")),
        ),
        None => {}
    }
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else if name.len() > DNS1123_LABEL_MAX_LENGTH {
        problems.push(format!(
            "name part must be no more than {DNS1123_LABEL_MAX_LENGTH} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        problems.push(format!("name part {}", qualified_name_regex_error()));
    }
    problems
}

/// The problems with `value` as a label value: empty, or at most 63 characters of
/// `[-A-Za-z0-9_.]` starting and ending alphanumeric.
pub fn check_label_value(value: &str) -> Vec<String> {
    let mut problems = max_len_problem(value, LABEL_VALUE_MAX_LENGTH);
    if !value.is_empty() && !is_qualified_name_part(value) {
        problems.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    problems
}

/// The rule an object's `metadata.name` must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain: most kinds.
    Dns1123Subdomain,
    /// A DNS-1123 label: namespaces and stateful sets (their pods' host names derive from it).
    Dns1123Label,
    /// A DNS-1035 label: services (their names become DNS names and environment variables).
    Dns1035Label,
}

impl NameRule {
    /// The problems with `name` under this rule. A `prefix` (a `generateName`) may end in `-`,
    /// since a random suffix follows it.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix {
            masked = mask_trailing_dash(name);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Dns1123Subdomain => check_dns1123_subdomain(name),
            NameRule::Dns1123Label => check_dns1123_label(name),
            NameRule::Dns1035Label => check_dns1035_label(name),
        }
    }
}

/// The rule the names of `resource`'s objects follow, as upstream validates them.
pub fn name_rule(resource: &Resource) -> NameRule {
    match (resource.group, resource.kind) {
        ("", "Namespace") | ("apps", "StatefulSet") => NameRule::Dns1123Label,
        ("", "Service") => NameRule::Dns1035Label,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// A trailing `-` replaced by a letter, so that a prefix may end in one.
fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => format!("{rest}a"),
        _ => name.to_string(),
    }
}

fn max_len_problem(value: &str, max: usize) -> Vec<String> {
    if value.len() > max {
        vec![format!("must be no more than {max} characters")]
    } else {
        Vec::new()
    }
}

/// Upstream's `RegexError`: the message, examples and the regex, worded exactly as upstream
/// (including its doubled spaces between examples).
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{regex}')",
        examples.join(" or ")
    )
}

fn qualified_name_regex_error() -> String {
    regex_error(
        QUALIFIED_NAME_ERR,
        QUALIFIED_NAME_FMT,
        &["MyName", "my.name", "123-abc"],
    )
}

/// Matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_label_shape(value: &str) -> bool {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    starts_and_ends_with(value, lower_alnum, lower_alnum)
        && value.chars().all(|c| lower_alnum(c) || c == '-')
}

/// Matches dot-separated DNS-1123 labels.
fn is_dns1123_subdomain_shape(value: &str) -> bool {
    value.split('.').all(is_dns1123_label_shape)
}

/// Matches `[a-z]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1035_label_shape(value: &str) -> bool {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    starts_and_ends_with(value, |c| c.is_ascii_lowercase(), lower_alnum)
        && value.chars().all(|c| lower_alnum(c) || c == '-')
}

/// Matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_name_part(value: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    starts_and_ends_with(value, alnum, alnum)
        && value
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

fn starts_and_ends_with(
    value: &str,
    first: impl Fn(char) -> bool,
    last: impl Fn(char) -> bool,
) -> bool {
    match (value.chars().next(), value.chars().last()) {
        (Some(f), Some(l)) => first(f) && last(l),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn subdomains() {
        for ok in ["a", "example.com", "a-b.c-d", "0", "web-7d9f8"] {
            assert!(check_dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", ".a", "a_b", "a/b"] {
            assert_eq!(check_dns1123_subdomain(bad), vec![SUBDOMAIN_MSG], "{bad}");
        }
        let long = "a".repeat(254);
        assert_eq!(
            check_dns1123_subdomain(&long),
            vec!["must be no more than 253 characters"]
        );
    }

    #[test]
    fn labels_and_dns1035() {
        assert!(check_dns1123_label("kube-system").is_empty());
        assert!(check_dns1123_label("1abc").is_empty());
        assert_eq!(check_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            check_dns1123_label("Abc"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(check_dns1123_label(&"a".repeat(64)).len(), 1);
        assert!(check_dns1035_label("web").is_empty());
        assert_eq!(
            check_dns1035_label("1web"),
            vec![
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "App.Name_1",
            "example.com/app",
            "a/b",
            "kubernetes.io/hostname",
        ] {
            assert!(check_qualified_name(ok).is_empty(), "{ok}");
        }
        let name_msg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(check_qualified_name("-app"), vec![name_msg]);
        assert_eq!(
            check_qualified_name(""),
            vec![
                "name part must be non-empty".to_string(),
                name_msg.to_string()
            ]
        );
        assert_eq!(
            check_qualified_name("/app"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            check_qualified_name("Example.com/app"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert!(check_qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(check_qualified_name("a/b/c")[0].ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
        assert_eq!(
            check_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "v1", "my_value", "1.2.3"] {
            assert!(check_label_value(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            check_label_value("a b"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
        assert_eq!(check_label_value(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn rules_per_resource() {
        let rule = |group, plural| name_rule(find(group, "v1", plural).unwrap());
        assert_eq!(rule("", "pods"), NameRule::Dns1123Subdomain);
        assert_eq!(rule("", "configmaps"), NameRule::Dns1123Subdomain);
        assert_eq!(rule("apps", "deployments"), NameRule::Dns1123Subdomain);
        assert_eq!(rule("", "namespaces"), NameRule::Dns1123Label);
        assert_eq!(rule("apps", "statefulsets"), NameRule::Dns1123Label);
        assert_eq!(rule("", "services"), NameRule::Dns1035Label);
    }

    #[test]
    fn generate_name_prefixes_may_end_in_a_dash() {
        assert!(NameRule::Dns1123Subdomain.check("web-", true).is_empty());
        assert!(!NameRule::Dns1123Subdomain.check("web-", false).is_empty());
        assert!(!NameRule::Dns1123Subdomain.check("-", true).is_empty());
    }
}
