//! Label selectors: the `labelSelector` query parameter's syntax (upstream's `labels.Parse`),
//! the `metav1.LabelSelector` of specs (matchLabels and matchExpressions), and matching a
//! selector against an object's labels. Both forms become the same [`Selector`].
//!
//! Syntax: comma-joined requirements, each `key=value`, `key==value`, `key!=value`,
//! `key in (a,b)`, `key notin (a,b)`, `key` (exists), `!key` (does not exist), or `key>1`,
//! `key<1` (integer comparison); whitespace between tokens is ignored. Keys are qualified names
//! (`example.com/app`), values label values, checked as upstream checks them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::names::{check_label_value, check_qualified_name};

/// Why a label selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text had a token where another was needed.
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        /// The token found (empty at the end of the text).
        found: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// One requirement could not be parsed; the message says why.
    #[error("unable to parse requirement: {0}")]
    Requirement(Box<SelectorError>),
    /// A requirement's key, operator or values are invalid (upstream's field errors).
    #[error("{}", join_problems(.0))]
    Invalid(Vec<String>),
    /// A matchExpressions operator other than In, NotIn, Exists and DoesNotExist.
    #[error("{0:?} is not a valid label selector operator")]
    UnknownOperator(String),
}

/// Upstream's aggregate error text: one problem alone, several in brackets.
fn join_problems(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// How a requirement compares a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key=value`: the label is present with that value.
    Equals,
    /// `key==value`: the same as `=`.
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>n`: the label is an integer greater than n.
    GreaterThan,
    /// `key<n`: the label is an integer less than n.
    LessThan,
}

/// One condition of a selector: a key, an operator and the values it compares with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: BTreeSet<String>,
}

impl Requirement {
    /// A requirement, checked as upstream's `NewRequirement` checks it: a qualified-name key,
    /// label values, and the number of values the operator takes.
    pub fn new(
        key: &str,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Requirement, SelectorError> {
        let values: Vec<String> = values.into_iter().collect();
        let mut problems = key_problems(key);
        problems.extend(value_count_problems(operator, &values));
        problems.extend(value_problems(key, &values));
        if !problems.is_empty() {
            return Err(SelectorError::Invalid(problems));
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values: values.into_iter().collect(),
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and without duplicates.
    pub fn values(&self) -> &BTreeSet<String> {
        &self.values
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.contains(v))
            }
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => value.is_some_and(|v| self.compares(v)),
        }
    }

    /// For `>` and `<`: whether the label value, as an integer, compares as required.
    fn compares(&self, label: &str) -> bool {
        let (Ok(label), Some(Ok(bound))) = (
            label.parse::<i64>(),
            self.values.first().map(|v| v.parse::<i64>()),
        ) else {
            return false;
        };
        match self.operator {
            Operator::GreaterThan => label > bound,
            _ => label < bound,
        }
    }
}

fn key_problems(key: &str) -> Vec<String> {
    let problems = check_qualified_name(key);
    if problems.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "key: Invalid value: {}: {}",
        quote(key),
        problems.join("; ")
    )]
}

fn value_count_problems(operator: Operator, values: &[String]) -> Vec<String> {
    let invalid = |detail: &str| {
        let shown = serde_json::to_string(values).unwrap_or_default();
        vec![format!("values: Invalid value: {shown}: {detail}")]
    };
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            invalid("for 'in', 'notin' operators, values set can't be empty")
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            invalid("exact-match compatibility requires one single value")
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            invalid("values set must be empty for exists and does not exist")
        }
        Operator::GreaterThan | Operator::LessThan if values.len() != 1 => {
            invalid("for 'Gt', 'Lt' operators, exactly one value is required")
        }
        Operator::GreaterThan | Operator::LessThan => values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.parse::<i64>().is_err())
            .map(|(i, v)| {
                format!(
                    "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                    quote(v)
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn value_problems(key: &str, values: &[String]) -> Vec<String> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, value)| {
            let problems = check_label_value(value);
            (!problems.is_empty()).then(|| {
                format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    quote(value),
                    problems.join("; ")
                )
            })
        })
        .collect()
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl fmt::Display for Requirement {
    /// Upstream's form: `key=v`, `key in (a,b)`, `!key`, …, values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let values = self.values.iter().cloned().collect::<Vec<_>>().join(",");
        match self.operator {
            Operator::Exists | Operator::DoesNotExist => Ok(()),
            Operator::Equals => write!(f, "={values}"),
            Operator::DoubleEquals => write!(f, "=={values}"),
            Operator::NotEquals => write!(f, "!={values}"),
            Operator::GreaterThan => write!(f, ">{values}"),
            Operator::LessThan => write!(f, "<{values}"),
            Operator::In => write!(f, " in ({values})"),
            Operator::NotIn => write!(f, " notin ({values})"),
        }
    }
}

/// A label selector: requirements that must all hold. No requirements select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that selects every object.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// A selector of these requirements, kept sorted by key as upstream keeps them.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Selector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector { requirements }
    }

    /// Parses the `labelSelector` syntax.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        Parser::new(text).parse().map(Selector::from_requirements)
    }

    /// Whether it has no requirements, so it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The value `key` must equal for the selector to match, if a requirement pins it
    /// (`key=v`, `key==v` or `key in (v)`); lets a caller narrow a search by an index.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements
            .iter()
            .filter(|r| r.key == key && r.values.len() == 1)
            .find(|r| {
                matches!(
                    r.operator,
                    Operator::Equals | Operator::DoubleEquals | Operator::In
                )
            })
            .and_then(|r| r.values.first().map(String::as_str))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Selector, SelectorError> {
        Selector::parse(s)
    }
}

impl TryFrom<&LabelSelector> for Selector {
    type Error = SelectorError;

    /// Upstream's `LabelSelectorAsSelector`: matchLabels become `key=value`, matchExpressions
    /// their operators; an empty LabelSelector selects everything. (A missing one selects
    /// nothing; that is the caller's `Option`.)
    fn try_from(selector: &LabelSelector) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(key, Operator::Equals, [value.clone()])?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::UnknownOperator(other.to_string())),
            };
            let values = expr.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(&expr.key, operator, values)?);
        }
        Ok(Selector::from_requirements(requirements))
    }
}

/// A token of the selector syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    End,
    Identifier(String),
    /// Punctuation and the `in`/`notin` keywords, by their text.
    Symbol(&'static str),
    /// Special characters that form no known symbol.
    Error(String),
}

const SYMBOLS: &[&str] = &["!", "!=", "(", ")", ",", "=", "==", ">", "<"];

impl Token {
    /// The text upstream shows for it in errors.
    fn literal(&self) -> String {
        match self {
            Token::End => String::new(),
            Token::Identifier(s) | Token::Error(s) => s.clone(),
            Token::Symbol(s) => (*s).to_string(),
        }
    }

    /// In value position the keywords are plain identifiers (`env in (in)`).
    fn into_value(self) -> Token {
        match self {
            Token::Symbol(s @ ("in" | "notin")) => Token::Identifier(s.to_string()),
            other => other,
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits the text into tokens, upstream's lexer: the longest known symbol of special
/// characters, or a run of other non-space characters.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_whitespace(chars[i]) {
            i += 1;
        } else if is_special(chars[i]) {
            let (token, len) = scan_symbol(&chars[i..]);
            tokens.push(token);
            i += len;
        } else {
            let len = chars[i..]
                .iter()
                .take_while(|&&c| !is_whitespace(c) && !is_special(c))
                .count();
            let word: String = chars[i..i + len].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::Symbol("in"),
                "notin" => Token::Symbol("notin"),
                _ => Token::Identifier(word),
            });
            i += len;
        }
    }
    tokens.push(Token::End);
    tokens
}

fn scan_symbol(chars: &[char]) -> (Token, usize) {
    let mut best: Option<(&'static str, usize)> = None;
    let mut buffer = String::new();
    for (n, &c) in chars
        .iter()
        .enumerate()
        .take_while(|(_, c)| is_special(**c))
    {
        buffer.push(c);
        match SYMBOLS.iter().find(|s| **s == buffer) {
            Some(symbol) => best = Some((symbol, n + 1)),
            None if best.is_some() => break,
            None => {}
        }
    }
    match best {
        Some((symbol, len)) => (Token::Symbol(symbol), len),
        None => {
            let len = buffer.chars().count();
            (
                Token::Error(format!("error expected: keyword found '{buffer}'")),
                len,
            )
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn new(text: &str) -> Parser {
        Parser {
            tokens: tokenize(text),
            position: 0,
        }
    }

    /// The next token without consuming it; in value position the keywords are identifiers.
    fn peek_value(&self) -> Token {
        self.tokens[self.position].clone().into_value()
    }

    fn next_operator(&mut self) -> Token {
        let token = self.tokens[self.position].clone();
        if token != Token::End {
            self.position += 1;
        }
        token
    }

    fn next_value(&mut self) -> Token {
        self.next_operator().into_value()
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            match self.peek_value() {
                Token::End => return Ok(requirements),
                Token::Identifier(_) | Token::Symbol("!") => {}
                other => return Err(unexpected(&other, "!, identifier, or 'end of string'")),
            }
            let requirement = self
                .parse_requirement()
                .map_err(|e| SelectorError::Requirement(Box::new(e)))?;
            requirements.push(requirement);
            match self.next_value() {
                Token::End => return Ok(requirements),
                Token::Symbol(",") => match self.peek_value() {
                    Token::Identifier(_) | Token::Symbol("!") => {}
                    other => return Err(unexpected(&other, "identifier after ','")),
                },
                other => return Err(unexpected(&other, "',' or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, unary) = self.parse_key_and_unary_operator()?;
        if let Some(operator) = unary {
            return Requirement::new(&key, operator, []);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_value_set()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values)
    }

    /// The key, and `Exists`/`DoesNotExist` when no binary operator follows it.
    fn parse_key_and_unary_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let mut token = self.next_value();
        let negated = token == Token::Symbol("!");
        if negated {
            token = self.next_value();
        }
        let Token::Identifier(key) = token else {
            return Err(unexpected(&token, "identifier"));
        };
        let key_problems = key_problems(&key);
        if !key_problems.is_empty() {
            return Err(SelectorError::Invalid(key_problems));
        }
        let at_end = matches!(self.peek_value(), Token::End | Token::Symbol(","));
        let unary = match (negated, at_end) {
            (true, _) => Some(Operator::DoesNotExist),
            (false, true) => Some(Operator::Exists),
            (false, false) => None,
        };
        Ok((key, unary))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let token = self.next_operator();
        Ok(match token {
            Token::Symbol("in") => Operator::In,
            Token::Symbol("notin") => Operator::NotIn,
            Token::Symbol("=") => Operator::Equals,
            Token::Symbol("==") => Operator::DoubleEquals,
            Token::Symbol("!=") => Operator::NotEquals,
            Token::Symbol(">") => Operator::GreaterThan,
            Token::Symbol("<") => Operator::LessThan,
            other => return Err(unexpected(&other, "in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// After `=`, `==`, `!=`, `>`, `<`: one value, empty when the requirement ends here.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        if matches!(self.peek_value(), Token::End | Token::Symbol(",")) {
            return Ok(vec![String::new()]);
        }
        match self.next_value() {
            Token::Identifier(value) => Ok(vec![value]),
            other => Err(unexpected(&other, "identifier")),
        }
    }

    /// After `in`/`notin`: `(a,b)`; empty places between commas are empty values.
    fn parse_value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        let open = self.next_value();
        if open != Token::Symbol("(") {
            return Err(unexpected(&open, "'('"));
        }
        match self.peek_value() {
            Token::Symbol(")") => {
                self.next_value();
                Ok(vec![String::new()])
            }
            Token::Identifier(_) | Token::Symbol(",") => {
                let values = self.parse_value_list()?;
                match self.next_value() {
                    Token::Symbol(")") => Ok(values),
                    other => Err(unexpected(&other, "')'")),
                }
            }
            other => Err(unexpected(&other, "',', ')' or identifier")),
        }
    }

    /// Values between the parentheses, after upstream's `parseIdentifiersList`.
    fn parse_value_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values = Vec::new();
        loop {
            match self.next_value() {
                Token::Identifier(value) => {
                    values.push(value);
                    match self.peek_value() {
                        Token::Symbol(",") => {}
                        Token::Symbol(")") => return Ok(values),
                        other => return Err(unexpected(&other, "',' or ')'")),
                    }
                }
                Token::Symbol(",") => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.peek_value() {
                        Token::Symbol(")") => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Symbol(",") => {
                            self.next_value();
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                other => return Err(unexpected(&other, "',', or identifier")),
            }
        }
    }
}

fn unexpected(token: &Token, expected: &'static str) -> SelectorError {
    SelectorError::Unexpected {
        found: token.literal(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_prints_every_operator() {
        let cases = [
            ("", ""),
            ("app=web", "app=web"),
            ("app==web", "app==web"),
            ("app!=web", "app!=web"),
            ("app in (web,db)", "app in (db,web)"),
            ("app notin (web)", "app notin (web)"),
            ("app", "app"),
            ("!app", "!app"),
            ("x>5", "x>5"),
            ("x<5", "x<5"),
            (" tier = front ,  app ", "app,tier=front"),
            ("example.com/app=web", "example.com/app=web"),
            ("app in (web, db,web)", "app in (db,web)"),
            ("app=", "app="),
            ("app in ()", "app in ()"),
            ("app in (a,)", "app in (,a)"),
            ("in in (in,notin)", "in in (in,notin)"),
            (
                "app!=web,!canary,env in(prod)",
                "app!=web,!canary,env in (prod)",
            ),
        ];
        for (text, printed) in cases {
            let selector = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(selector.to_string(), printed, "{text}");
        }
    }

    #[test]
    fn matches_like_upstream() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("replicas", "3")]);
        let none = labels(&[]);
        let cases = [
            ("", true, true),
            ("app=web", true, false),
            ("app!=web", false, true),
            ("app!=db", true, true),
            ("app in (db,web)", true, false),
            ("app notin (db,web)", false, true),
            ("app", true, false),
            ("!app", false, true),
            ("app=web,tier=back", false, false),
            ("replicas>2", true, false),
            ("replicas<3", false, false),
            ("app>2", false, false),
        ];
        for (text, matches_web, matches_none) in cases {
            let s = Selector::parse(text).unwrap();
            assert_eq!(s.matches(&web), matches_web, "{text} on web");
            assert_eq!(s.matches(&none), matches_none, "{text} on no labels");
        }
    }

    #[test]
    fn parse_errors_say_what_was_expected() {
        let cases = [
            ("app=web,", "found '', expected: identifier after ','"),
            (
                "app in web",
                "unable to parse requirement: found 'web', expected: '('",
            ),
            (
                "app in (web",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "app web",
                "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "=web",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            ("app=web=db", "found '=', expected: ',' or 'end of string'"),
            (
                "app=(web)",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "x>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        ];
        for (text, message) in cases {
            let err = Selector::parse(text).unwrap_err();
            assert_eq!(err.to_string(), message, "{text}");
        }
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        let err = Selector::parse("-app=web").unwrap_err().to_string();
        assert!(
            err.starts_with("unable to parse requirement: key: Invalid value: \"-app\": name part must consist of alphanumeric characters"),
            "{err}"
        );
        let err = Selector::parse("app=web!").unwrap_err().to_string();
        assert!(
            err.contains("found '!', expected: ',' or 'end of string'"),
            "{err}"
        );
        let err = Selector::parse("app=-web").unwrap_err().to_string();
        assert!(
            err.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-web\": a valid label must be an empty string"),
            "{err}"
        );
    }

    #[test]
    fn label_selector_objects_convert() {
        let ls = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["front".into(), "back".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        let s = Selector::try_from(&ls).unwrap();
        assert_eq!(s.to_string(), "app=web,!canary,tier in (back,front)");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "back")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "back"),
            ("canary", "1")
        ])));
        assert!(
            Selector::try_from(&LabelSelector::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn label_selector_objects_are_validated() {
        let expr = |operator: &str, values: Option<Vec<String>>| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: operator.into(),
                values,
            }]),
            ..Default::default()
        };
        let err = |ls: &LabelSelector| Selector::try_from(ls).unwrap_err().to_string();
        assert_eq!(
            err(&expr("Equals", None)),
            "\"Equals\" is not a valid label selector operator"
        );
        assert_eq!(
            err(&expr("In", None)),
            "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err(&expr("Exists", Some(vec!["x".into()]))),
            "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist"
        );
        let bad_label = LabelSelector {
            match_labels: Some([("a b".to_string(), "c d".to_string())].into()),
            ..Default::default()
        };
        let message = err(&bad_label);
        assert!(
            message.starts_with("[key: Invalid value: \"a b\""),
            "{message}"
        );
        assert!(
            message.contains(", values[0][a b]: Invalid value: \"c d\""),
            "{message}"
        );
    }

    #[test]
    fn exact_match_is_found_for_indexes() {
        let s = Selector::parse("app=web,tier in (a,b),env in (prod)").unwrap();
        assert_eq!(s.requires_exact_match("app"), Some("web"));
        assert_eq!(s.requires_exact_match("env"), Some("prod"));
        assert_eq!(s.requires_exact_match("tier"), None);
    }

    fn requirement_strategy() -> impl Strategy<Value = Requirement> {
        let key = prop::sample::select(vec!["app", "tier", "example.com/env", "in"]);
        let value = prop::sample::select(vec!["", "web", "db", "v1.2", "in"]);
        let values = prop::collection::btree_set(value.clone(), 1..3);
        let operator = prop::sample::select(vec![
            Operator::Equals,
            Operator::DoubleEquals,
            Operator::NotEquals,
            Operator::In,
            Operator::NotIn,
            Operator::Exists,
            Operator::DoesNotExist,
        ]);
        (key, operator, value, values).prop_map(|(key, operator, one, many)| {
            let values: Vec<String> = match operator {
                Operator::Exists | Operator::DoesNotExist => vec![],
                Operator::In | Operator::NotIn => many.into_iter().map(String::from).collect(),
                _ => vec![one.to_string()],
            };
            Requirement::new(key, operator, values).unwrap()
        })
    }

    fn labels_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
        let key = prop::sample::select(vec!["app", "tier", "example.com/env", "in"]);
        let value = prop::sample::select(vec!["", "web", "db", "v1.2", "in"]);
        prop::collection::btree_map(
            key.prop_map(String::from),
            value.prop_map(String::from),
            0..4,
        )
    }

    proptest! {
        #[test]
        fn printed_selectors_parse_back_to_the_same_meaning(
            requirements in prop::collection::vec(requirement_strategy(), 0..4),
            label_sets in prop::collection::vec(labels_strategy(), 1..8),
        ) {
            let selector = Selector::from_requirements(requirements);
            let reparsed = Selector::parse(&selector.to_string()).unwrap();
            prop_assert_eq!(&reparsed, &selector);
            for labels in &label_sets {
                prop_assert_eq!(reparsed.matches(labels), selector.matches(labels));
            }
        }
    }
}
