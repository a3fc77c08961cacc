//! A linearizability checker for histories of per-key registers (pure logic, no IO).
//!
//! A history is a list of [`Operation`]s: which client issued what on which key, when the call
//! started and returned, and what came back. Each key is checked on its own (linearizability is
//! compositional, so a history is linearizable iff every per-key sub-history is).
//!
//! The model is an etcd key used as a register: `put(v)`, `get() -> (v, mod_revision)` and a
//! compare-and-swap transaction that compares either the value or the `mod_revision` and, if it
//! matches, puts a new value. Values must be unique per write (the workload guarantees it), which
//! lets the checker learn the revision each write got from any response that shows it and turn a
//! revision comparison into a comparison against the value holding that revision. Writes
//! linearized one after another must carry increasing revisions.
//!
//! An operation whose outcome the client does not know (timeout, connection reset) may or may not
//! have taken effect: it is treated as returning at infinity, so the search may place it anywhere
//! after its call or leave it out. Reads with unknown outcome carry no information and are
//! dropped.
//!
//! The search is Wing & Gong's with Lowe's memoization as in porcupine: walk a time-ordered list
//! of call and return events, tentatively linearize a pending call whenever the model accepts it,
//! backtrack when a return event is reached whose call is not yet linearized, and never revisit a
//! (set of linearized operations, model state) pair.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Instant;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Unconditional put.
    Put {
        /// The value written (unique in the history).
        value: String,
    },
    /// Linearizable read.
    Get,
    /// `txn(if <expected> then put(new))`.
    Cas {
        /// What the key must hold for the put to happen.
        expected: Expected,
        /// The value written on success (unique in the history).
        new: String,
    },
}

/// The comparison of a compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `mod_revision(key) == r`; 0 means the key does not exist.
    ModRevision(i64),
    /// `value(key) == v`; never true for a missing key (as in etcd).
    Value(String),
}

/// What the client got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// The put was applied at this store revision.
    Put {
        /// Header revision of the response, the write's `mod_revision`.
        revision: i64,
    },
    /// The value read; `None` (with `mod_revision` 0) if the key did not exist.
    Get {
        /// The value, if any.
        value: Option<String>,
        /// Its `mod_revision`, 0 for a missing key.
        mod_revision: i64,
    },
    /// Whether the comparison held; on success `revision` is the new value's `mod_revision`.
    Cas {
        /// The comparison held and the put happened.
        succeeded: bool,
        /// Header revision of the response.
        revision: i64,
    },
    /// No answer (timeout or error): the operation may or may not have happened.
    Unknown,
}

/// One recorded client operation.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The client that issued it; a client has at most one operation outstanding.
    pub client: usize,
    /// The key it touched.
    pub key: String,
    /// When the request was sent.
    pub call_instant: Instant,
    /// When the answer (or the error) arrived. Ignored for [`OpResult::Unknown`], which counts as
    /// returning at infinity.
    pub return_instant: Instant,
    /// The request.
    pub op: Op,
    /// The response.
    pub result: OpResult,
}

/// The verdict for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists (or the responses contradict each other).
    Violation(String),
    /// The search gave up after its step budget.
    Inconclusive(String),
}

/// The verdict for one key's sub-history.
#[derive(Clone, Debug)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// Operations checked (unknown-outcome reads excluded).
    pub operations: usize,
    /// Operations whose outcome was unknown.
    pub unknown: usize,
    /// The verdict.
    pub verdict: Verdict,
}

/// Verdicts for all keys of a history.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per key, sorted by key.
    pub keys: Vec<KeyReport>,
}

impl Report {
    /// True if every key is linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.keys.iter().all(|k| k.verdict == Verdict::Linearizable)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for key in &self.keys {
            writeln!(
                f,
                "{}: {} ops ({} unknown): {:?}",
                key.key, key.operations, key.unknown, key.verdict
            )?;
        }
        Ok(())
    }
}

/// Search steps allowed per key before giving up.
pub const DEFAULT_STEP_BUDGET: u64 = 50_000_000;

/// Checks every key of `history`.
pub fn check(history: &[Operation]) -> Report {
    check_with_budget(history, DEFAULT_STEP_BUDGET)
}

/// Checks every key of `history`, giving up on a key after `budget` search steps.
pub fn check_with_budget(history: &[Operation], budget: u64) -> Report {
    let mut by_key: HashMap<&str, Vec<&Operation>> = HashMap::new();
    for operation in history {
        by_key.entry(&operation.key).or_default().push(operation);
    }
    let mut keys: Vec<KeyReport> = by_key
        .into_iter()
        .map(|(key, operations)| check_key(key, &operations, budget))
        .collect();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    Report { keys }
}

/// Interned value: an index into the key's table of distinct values.
type ValueId = u32;

/// The model's state: the current value and the highest revision known to have been written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    value: Option<ValueId>,
    revision: i64,
}

/// The comparison, resolved to a value.
#[derive(Clone, Copy, Debug)]
enum Guard {
    /// Key absent.
    Absent,
    /// Key holds this value.
    Holds(ValueId),
    /// Nothing the key could hold matches (a revision no response ever showed).
    Never,
}

/// An operation in model terms.
#[derive(Clone, Copy, Debug)]
enum Step {
    Write {
        value: ValueId,
        revision: Option<i64>,
    },
    Read {
        value: Option<ValueId>,
    },
    Cas {
        guard: Guard,
        value: ValueId,
        revision: Option<i64>,
        /// `None` when the outcome is unknown.
        succeeded: Option<bool>,
    },
}

impl Step {
    /// The state after applying this step to `state`, or `None` if the model forbids it here.
    /// A step with unknown outcome that would change nothing is refused: leaving it out is the
    /// same linearization.
    fn apply(self, state: State) -> Option<State> {
        let write = |value: ValueId, revision: Option<i64>| match revision {
            Some(r) if r <= state.revision => None,
            Some(r) => Some(State {
                value: Some(value),
                revision: r,
            }),
            None => Some(State {
                value: Some(value),
                revision: state.revision,
            }),
        };
        match self {
            Step::Write { value, revision } => write(value, revision),
            Step::Read { value } => (value == state.value).then_some(state),
            Step::Cas {
                guard,
                value,
                revision,
                succeeded,
            } => {
                let holds = match guard {
                    Guard::Absent => state.value.is_none(),
                    Guard::Holds(expected) => state.value == Some(expected),
                    Guard::Never => false,
                };
                match (succeeded, holds) {
                    (Some(true), true) | (None, true) => write(value, revision),
                    (Some(false), false) => Some(state),
                    _ => None,
                }
            }
        }
    }
}

/// Per-key preprocessing: interning, the revision each value was written at, model steps.
struct Prepared {
    steps: Vec<Step>,
    calls: Vec<Instant>,
    /// `None` for unknown outcome (returns at infinity).
    returns: Vec<Option<Instant>>,
    /// Index into the key's operations, for messages.
    origin: Vec<usize>,
}

fn prepare(operations: &[&Operation]) -> Result<Prepared, String> {
    let mut ids: HashMap<String, ValueId> = HashMap::new();
    let mut intern = |value: &str| -> ValueId {
        if let Some(&id) = ids.get(value) {
            return id;
        }
        let id = ids.len() as ValueId;
        ids.insert(value.to_owned(), id);
        id
    };
    // Learn value -> revision from every response that reveals it; contradictions are violations.
    let mut revision_of: HashMap<&str, i64> = HashMap::new();
    let mut value_at: HashMap<i64, &str> = HashMap::new();
    let mut observations: Vec<(&str, i64, usize)> = Vec::new();
    for (index, operation) in operations.iter().enumerate() {
        match (&operation.op, &operation.result) {
            (Op::Put { value }, OpResult::Put { revision }) => {
                observations.push((value, *revision, index));
            }
            (
                Op::Get,
                OpResult::Get {
                    value: Some(value),
                    mod_revision,
                },
            ) => observations.push((value, *mod_revision, index)),
            (
                Op::Get,
                OpResult::Get {
                    value: None,
                    mod_revision,
                },
            ) if *mod_revision != 0 => {
                return Err(format!(
                    "operation {index}: missing key reported with mod_revision {mod_revision}"
                ));
            }
            (
                Op::Cas { new, .. },
                OpResult::Cas {
                    succeeded: true,
                    revision,
                },
            ) => observations.push((new, *revision, index)),
            (_, OpResult::Unknown | OpResult::Get { .. } | OpResult::Cas { .. }) => {}
            (op, result) => {
                return Err(format!(
                    "operation {index}: result {result:?} does not answer {op:?}"
                ));
            }
        }
    }
    for (value, revision, index) in observations {
        if let Some(&known) = revision_of.get(value)
            && known != revision
        {
            return Err(format!(
                "value {value:?} seen at mod_revision {known} and {revision} (operation {index})"
            ));
        }
        if let Some(&other) = value_at.get(&revision)
            && other != value
        {
            return Err(format!(
                "mod_revision {revision} holds both {other:?} and {value:?} (operation {index})"
            ));
        }
        revision_of.insert(value, revision);
        value_at.insert(revision, value);
    }

    let mut prepared = Prepared {
        steps: Vec::new(),
        calls: Vec::new(),
        returns: Vec::new(),
        origin: Vec::new(),
    };
    for (index, operation) in operations.iter().enumerate() {
        let unknown = operation.result == OpResult::Unknown;
        let step = match (&operation.op, &operation.result) {
            (Op::Get, OpResult::Unknown) => continue,
            (Op::Get, OpResult::Get { value, .. }) => Step::Read {
                value: value.as_deref().map(&mut intern),
            },
            (Op::Put { value }, _) => Step::Write {
                value: intern(value),
                revision: revision_of.get(value.as_str()).copied(),
            },
            (Op::Cas { expected, new }, result) => {
                let guard = match expected {
                    Expected::ModRevision(0) => Guard::Absent,
                    Expected::ModRevision(r) => match value_at.get(r) {
                        Some(value) => Guard::Holds(intern(value)),
                        None => Guard::Never,
                    },
                    Expected::Value(value) => Guard::Holds(intern(value)),
                };
                let succeeded = match result {
                    OpResult::Cas { succeeded, .. } => Some(*succeeded),
                    _ => None,
                };
                Step::Cas {
                    guard,
                    value: intern(new),
                    revision: revision_of.get(new.as_str()).copied(),
                    succeeded,
                }
            }
            (Op::Get, result) => {
                return Err(format!(
                    "operation {index}: {result:?} does not answer a get"
                ));
            }
        };
        if !unknown && operation.return_instant < operation.call_instant {
            return Err(format!("operation {index} returns before it is called"));
        }
        prepared.steps.push(step);
        prepared.calls.push(operation.call_instant);
        prepared
            .returns
            .push((!unknown).then_some(operation.return_instant));
        prepared.origin.push(index);
    }
    Ok(prepared)
}

fn check_key(key: &str, operations: &[&Operation], budget: u64) -> KeyReport {
    let unknown = operations
        .iter()
        .filter(|o| o.result == OpResult::Unknown)
        .count();
    let (checked, verdict) = match prepare(operations) {
        Err(reason) => (operations.len(), Verdict::Violation(reason)),
        Ok(prepared) => {
            let verdict = search(&prepared, budget, operations);
            (prepared.steps.len(), verdict)
        }
    };
    KeyReport {
        key: key.to_owned(),
        operations: checked,
        unknown,
        verdict,
    }
}

/// A fixed-size set of operation indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

const NIL: usize = usize::MAX;

/// The doubly linked event list: node 0 is the head sentinel, then events in time order. Lifting
/// an operation unlinks its call (and return) event; unlifting relinks them in reverse order, so
/// nodes remember their neighbours ("dancing links").
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each node: the operation, and whether the node is its call.
    op: Vec<(usize, bool)>,
    /// For each operation: its call node and return node (if it returns).
    nodes: Vec<(usize, Option<usize>)>,
}

impl Events {
    fn new(prepared: &Prepared) -> Self {
        let n = prepared.steps.len();
        // (time, is_return, op): calls sort before returns at equal times, so operations that
        // touch at one instant count as concurrent.
        let mut events: Vec<(Instant, bool, usize)> = Vec::with_capacity(2 * n);
        for op in 0..n {
            events.push((prepared.calls[op], false, op));
            if let Some(ret) = prepared.returns[op] {
                events.push((ret, true, op));
            }
        }
        events.sort();
        let len = events.len() + 1;
        let mut list = Self {
            next: (1..=len).map(|i| if i == len { NIL } else { i }).collect(),
            prev: (0..len).map(|i| if i == 0 { NIL } else { i - 1 }).collect(),
            op: vec![(NIL, false); len],
            nodes: vec![(NIL, None); n],
        };
        for (position, &(_, is_return, op)) in events.iter().enumerate() {
            let node = position + 1;
            list.op[node] = (op, !is_return);
            if is_return {
                list.nodes[op].1 = Some(node);
            } else {
                list.nodes[op].0 = node;
            }
        }
        list
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    fn lift(&mut self, op: usize) {
        let (call, ret) = self.nodes[op];
        self.unlink(call);
        if let Some(ret) = ret {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, op: usize) {
        let (call, ret) = self.nodes[op];
        if let Some(ret) = ret {
            self.relink(ret);
        }
        self.relink(call);
    }
}

fn search(prepared: &Prepared, budget: u64, operations: &[&Operation]) -> Verdict {
    let n = prepared.steps.len();
    let mut events = Events::new(prepared);
    let mut remaining = prepared.returns.iter().filter(|r| r.is_some()).count();
    let mut linearized = BitSet::new(n);
    let mut seen: HashSet<(BitSet, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = State {
        value: None,
        revision: 0,
    };
    // For the message on failure: the deepest point reached and the operation that blocked it.
    let mut deepest = (0usize, NIL);
    let mut steps = 0u64;
    let mut node = events.next[0];
    loop {
        if remaining == 0 || node == NIL {
            // Every operation that returned is linearized; the rest had unknown outcomes.
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Inconclusive(format!(
                "gave up after {budget} steps at depth {} of {n}",
                stack.len()
            ));
        }
        let (op, is_call) = events.op[node];
        if is_call {
            if let Some(next_state) = prepared.steps[op].apply(state) {
                linearized.set(op);
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((op, state));
                    state = next_state;
                    events.lift(op);
                    if prepared.returns[op].is_some() {
                        remaining -= 1;
                    }
                    node = events.next[0];
                    continue;
                }
                linearized.clear(op);
            }
            node = events.next[node];
        } else {
            // `op` returned but is not linearized: undo the most recent choice.
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), op);
            }
            let Some((undone, previous)) = stack.pop() else {
                let blocker = operations[prepared.origin[deepest.1]];
                return Verdict::Violation(format!(
                    "no linearization: at most {} of {n} operations could be ordered before \
                     client {} {:?} -> {:?} had to take effect",
                    deepest.0, blocker.client, blocker.op, blocker.result
                ));
            };
            linearized.clear(undone);
            state = previous;
            events.unlift(undone);
            if prepared.returns[undone].is_some() {
                remaining += 1;
            }
            node = events.next[events.nodes[undone].0];
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Builds histories with times in milliseconds after a common origin.
    struct Builder {
        origin: Instant,
        ops: Vec<Operation>,
    }

    impl Builder {
        fn new() -> Self {
            Self {
                origin: Instant::now(),
                ops: Vec::new(),
            }
        }

        fn at(&self, ms: u64) -> Instant {
            self.origin + Duration::from_millis(ms)
        }

        fn op(&mut self, client: usize, key: &str, call: u64, ret: u64, op: Op, result: OpResult) {
            self.ops.push(Operation {
                client,
                key: key.into(),
                call_instant: self.at(call),
                return_instant: self.at(ret),
                op,
                result,
            });
        }

        fn put(&mut self, client: usize, call: u64, ret: u64, value: &str, revision: i64) {
            self.op(
                client,
                "k",
                call,
                ret,
                Op::Put {
                    value: value.into(),
                },
                OpResult::Put { revision },
            );
        }

        fn put_unknown(&mut self, client: usize, call: u64, value: &str) {
            self.op(
                client,
                "k",
                call,
                call,
                Op::Put {
                    value: value.into(),
                },
                OpResult::Unknown,
            );
        }

        fn get(&mut self, client: usize, call: u64, ret: u64, value: Option<(&str, i64)>) {
            self.op(
                client,
                "k",
                call,
                ret,
                Op::Get,
                OpResult::Get {
                    value: value.map(|(v, _)| v.into()),
                    mod_revision: value.map_or(0, |(_, r)| r),
                },
            );
        }

        #[allow(clippy::too_many_arguments)]
        fn cas(
            &mut self,
            client: usize,
            call: u64,
            ret: u64,
            expected: Expected,
            new: &str,
            succeeded: bool,
            revision: i64,
        ) {
            self.op(
                client,
                "k",
                call,
                ret,
                Op::Cas {
                    expected,
                    new: new.into(),
                },
                OpResult::Cas {
                    succeeded,
                    revision,
                },
            );
        }

        fn verdict(&self) -> Verdict {
            let report = check(&self.ops);
            assert_eq!(report.keys.len(), 1, "{report}");
            report.keys[0].verdict.clone()
        }

        fn assert_ok(&self) {
            assert_eq!(self.verdict(), Verdict::Linearizable);
        }

        fn assert_violation(&self) {
            let verdict = self.verdict();
            assert!(
                matches!(verdict, Verdict::Violation(_)),
                "expected a violation, got {verdict:?}"
            );
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert!(check(&[]).is_linearizable());
    }

    #[test]
    fn sequential_put_then_get() {
        let mut h = Builder::new();
        h.get(0, 0, 1, None);
        h.put(0, 2, 3, "a", 2);
        h.get(1, 4, 5, Some(("a", 2)));
        h.assert_ok();
    }

    #[test]
    fn stale_read_after_completed_write_fails() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.put(0, 2, 3, "b", 3);
        h.get(1, 4, 5, Some(("a", 2)));
        h.assert_violation();
    }

    #[test]
    fn read_concurrent_with_write_may_see_either_value() {
        for seen in ["a", "b"] {
            let mut h = Builder::new();
            h.put(0, 0, 1, "a", 2);
            h.put(0, 2, 10, "b", 3);
            let revision = if seen == "a" { 2 } else { 3 };
            h.get(1, 3, 4, Some((seen, revision)));
            h.assert_ok();
        }
    }

    #[test]
    fn read_of_a_value_never_written_fails() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.get(1, 2, 3, Some(("zzz", 7)));
        h.assert_violation();
    }

    #[test]
    fn read_going_back_in_time_fails() {
        // Two reads concurrent with the write, but the later read sees the older value.
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.put(0, 2, 20, "b", 3);
        h.get(1, 3, 4, Some(("b", 3)));
        h.get(2, 5, 6, Some(("a", 2)));
        h.assert_violation();
    }

    #[test]
    fn unknown_write_may_have_happened() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.put_unknown(1, 2, "b");
        h.get(2, 10, 11, Some(("b", 3)));
        h.get(2, 12, 13, Some(("b", 3)));
        h.assert_ok();
    }

    #[test]
    fn unknown_write_may_not_have_happened() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.put_unknown(1, 2, "b");
        h.get(2, 10, 11, Some(("a", 2)));
        h.assert_ok();
    }

    #[test]
    fn unknown_write_cannot_take_effect_before_its_call() {
        let mut h = Builder::new();
        h.get(2, 0, 1, Some(("b", 3)));
        h.put_unknown(1, 2, "b");
        h.assert_violation();
    }

    #[test]
    fn unknown_write_cannot_flicker() {
        // Once a read saw the unknown write's value and a later write overwrote it, the old
        // value cannot come back.
        let mut h = Builder::new();
        h.put_unknown(1, 0, "b");
        h.get(2, 10, 11, Some(("b", 3)));
        h.put(0, 12, 13, "c", 4);
        h.get(2, 14, 15, Some(("b", 3)));
        h.assert_violation();
    }

    #[test]
    fn unknown_read_is_ignored() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.op(1, "k", 2, 3, Op::Get, OpResult::Unknown);
        h.assert_ok();
    }

    #[test]
    fn cas_by_value() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.cas(1, 2, 3, Expected::Value("a".into()), "b", true, 3);
        h.cas(1, 4, 5, Expected::Value("a".into()), "c", false, 3);
        h.get(0, 6, 7, Some(("b", 3)));
        h.assert_ok();
    }

    #[test]
    fn cas_that_succeeds_on_a_mismatch_fails() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.put(0, 2, 3, "b", 3);
        h.cas(1, 4, 5, Expected::Value("a".into()), "c", true, 4);
        h.assert_violation();
    }

    #[test]
    fn cas_that_fails_on_a_match_fails() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.cas(1, 2, 3, Expected::ModRevision(2), "c", false, 2);
        h.assert_violation();
    }

    #[test]
    fn cas_by_mod_revision() {
        let mut h = Builder::new();
        h.cas(0, 0, 1, Expected::ModRevision(0), "a", true, 2);
        h.get(1, 2, 3, Some(("a", 2)));
        h.cas(1, 4, 5, Expected::ModRevision(2), "b", true, 3);
        h.cas(0, 6, 7, Expected::ModRevision(2), "c", false, 3);
        h.get(0, 8, 9, Some(("b", 3)));
        h.assert_ok();
    }

    #[test]
    fn two_concurrent_cas_on_the_same_revision_cannot_both_win() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.cas(1, 2, 10, Expected::ModRevision(2), "b", true, 3);
        h.cas(2, 2, 10, Expected::ModRevision(2), "c", true, 4);
        h.assert_violation();
    }

    #[test]
    fn unknown_cas_may_have_won() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.op(
            1,
            "k",
            2,
            2,
            Op::Cas {
                expected: Expected::ModRevision(2),
                new: "b".into(),
            },
            OpResult::Unknown,
        );
        h.cas(2, 5, 6, Expected::ModRevision(2), "c", false, 3);
        h.get(2, 7, 8, Some(("b", 3)));
        h.assert_ok();
    }

    #[test]
    fn revisions_must_increase_with_real_time() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 5);
        h.put(0, 2, 3, "b", 4);
        h.assert_violation();
    }

    #[test]
    fn one_value_with_two_revisions_fails() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.get(1, 2, 3, Some(("a", 3)));
        h.assert_violation();
    }

    #[test]
    fn missing_key_with_a_revision_fails() {
        let mut h = Builder::new();
        h.op(
            0,
            "k",
            0,
            1,
            Op::Get,
            OpResult::Get {
                value: None,
                mod_revision: 3,
            },
        );
        h.assert_violation();
    }

    #[test]
    fn keys_are_checked_separately() {
        let mut h = Builder::new();
        h.put(0, 0, 1, "a", 2);
        h.get(1, 2, 3, Some(("a", 2)));
        // Key "j": a read of a value that was overwritten before the read began.
        h.op(
            0,
            "j",
            0,
            1,
            Op::Put { value: "x".into() },
            OpResult::Put { revision: 3 },
        );
        h.op(
            0,
            "j",
            2,
            3,
            Op::Put { value: "y".into() },
            OpResult::Put { revision: 4 },
        );
        h.op(
            1,
            "j",
            4,
            5,
            Op::Get,
            OpResult::Get {
                value: Some("x".into()),
                mod_revision: 3,
            },
        );
        let report = check(&h.ops);
        assert!(!report.is_linearizable());
        assert_eq!(report.keys[0].key, "j");
        assert!(matches!(report.keys[0].verdict, Verdict::Violation(_)));
        assert_eq!(report.keys[1].verdict, Verdict::Linearizable);
    }

    /// Random histories generated from a real sequential execution: every operation takes effect
    /// at a distinct instant between its call and its return, and its result is what a register
    /// returns at that instant. Such histories are linearizable by construction.
    fn generated_history(seed: u64, clients: usize, per_client: usize) -> Vec<Operation> {
        let mut rng = StdRng::seed_from_u64(seed);
        let origin = Instant::now();
        let at = |us: u64| origin + Duration::from_micros(us);
        // Per client: a sequence of (call, effect, return) with effect strictly inside, and the
        // effects globally distinct.
        struct Pending {
            client: usize,
            call: u64,
            effect: u64,
            ret: u64,
            kind: u8,
            unknown: bool,
        }
        let mut pending = Vec::new();
        for client in 0..clients {
            let mut now = rng.random_range(0..50u64);
            for _ in 0..per_client {
                let call = now;
                let effect = call + rng.random_range(1..100u64) * 10 + client as u64;
                let ret = effect + rng.random_range(1..100u64) * 10;
                let unknown = rng.random_bool(0.05);
                pending.push(Pending {
                    client,
                    call,
                    effect,
                    ret,
                    kind: rng.random_range(0..3),
                    unknown,
                });
                now = ret + rng.random_range(1..30u64);
            }
        }
        pending.sort_by_key(|p| p.effect);
        let mut value: Option<(String, i64)> = None;
        let mut revision = 1i64;
        let mut revealed = HashSet::new();
        let mut history = Vec::new();
        for (n, p) in pending.iter().enumerate() {
            let new = format!("v{n}");
            let (op, result) = match p.kind {
                0 => {
                    revision += 1;
                    value = Some((new.clone(), revision));
                    (Op::Put { value: new }, OpResult::Put { revision })
                }
                1 => (
                    Op::Get,
                    OpResult::Get {
                        value: value.as_ref().map(|(v, _)| v.clone()),
                        mod_revision: value.as_ref().map_or(0, |(_, r)| *r),
                    },
                ),
                _ => {
                    let expected = value.as_ref().map_or(0, |(_, r)| *r);
                    // Half the CASes compare a stale revision and fail.
                    let mut expected = if rng.random_bool(0.5) {
                        expected
                    } else {
                        expected.saturating_sub(1)
                    };
                    // Like real clients, compare only revisions some response revealed.
                    if expected != 0 && !revealed.contains(&expected) {
                        expected = 1_000_000;
                    }
                    let holds = value.as_ref().map_or(0, |(_, r)| *r) == expected;
                    if holds {
                        revision += 1;
                        value = Some((new.clone(), revision));
                    }
                    (
                        Op::Cas {
                            expected: Expected::ModRevision(expected),
                            new,
                        },
                        OpResult::Cas {
                            succeeded: holds,
                            revision,
                        },
                    )
                }
            };
            let result = if p.unknown { OpResult::Unknown } else { result };
            match &result {
                OpResult::Put { revision }
                | OpResult::Cas {
                    succeeded: true,
                    revision,
                } => {
                    revealed.insert(*revision);
                }
                OpResult::Get { mod_revision, .. } => {
                    revealed.insert(*mod_revision);
                }
                _ => {}
            }
            history.push(Operation {
                client: p.client,
                key: "k".into(),
                call_instant: at(p.call),
                return_instant: at(p.ret),
                op,
                result,
            });
        }
        history
    }

    #[test]
    fn generated_linearizable_histories_pass() {
        for seed in 0..20 {
            let history = generated_history(seed, 8, 60);
            let report = check(&history);
            assert!(report.is_linearizable(), "seed {seed}: {report}");
        }
    }

    #[test]
    fn large_generated_history_passes() {
        // About the size of one key's share of the 20 s cluster workload.
        let history = generated_history(7, 8, 400);
        let report = check(&history);
        assert!(report.is_linearizable(), "{report}");
    }

    #[test]
    fn generated_histories_with_a_corrupted_read_fail() {
        for seed in 0..5 {
            let mut history = generated_history(seed, 4, 40);
            // Make the last known read that saw a value return a value that no one wrote.
            let Some(read) = history
                .iter_mut()
                .rev()
                .find(|o| matches!(o.result, OpResult::Get { value: Some(_), .. }))
            else {
                continue;
            };
            read.result = OpResult::Get {
                value: Some("never-written".into()),
                mod_revision: 1_000_000,
            };
            let report = check(&history);
            assert!(!report.is_linearizable(), "seed {seed}: {report}");
        }
    }

    #[test]
    fn generated_histories_with_a_stale_read_fail() {
        // Replace a read's answer with the value the key held two writes earlier, after making
        // the read start only once both later writes had returned.
        let mut failures = 0;
        for seed in 0..20 {
            let mut history = generated_history(seed, 4, 40);
            let writes: Vec<usize> = (0..history.len())
                .filter(|&i| matches!(history[i].result, OpResult::Put { .. }))
                .collect();
            if writes.len() < 3 {
                continue;
            }
            let (old, _, last) = (writes[0], writes[1], writes[2]);
            let Op::Put { value } = history[old].op.clone() else {
                unreachable!()
            };
            let OpResult::Put { revision } = history[old].result else {
                unreachable!()
            };
            let after = history[last]
                .return_instant
                .max(history[writes[1]].return_instant);
            history.push(Operation {
                client: 99,
                key: "k".into(),
                call_instant: after + Duration::from_micros(1),
                return_instant: after + Duration::from_micros(2),
                op: Op::Get,
                result: OpResult::Get {
                    value: Some(value),
                    mod_revision: revision,
                },
            });
            assert!(!check(&history).is_linearizable(), "seed {seed}");
            failures += 1;
        }
        assert!(failures > 10);
    }

    #[test]
    fn budget_exhaustion_is_inconclusive() {
        let history = generated_history(1, 8, 60);
        let report = check_with_budget(&history, 10);
        assert!(matches!(report.keys[0].verdict, Verdict::Inconclusive(_)));
    }
}
