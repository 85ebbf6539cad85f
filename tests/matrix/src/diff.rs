//! Differential runs: the same session, op by op, against two servers on identical served
//! folders; their answers must be equal after [`normalize`].

use std::fmt::Write as _;

use crate::exec::{Executor, Msg, err_code};
use crate::model::Model;
use crate::normalize::normalize;
use crate::ops::{Op, Session};
use crate::oracle::closes;
use crate::{Impl, server_with};

/// Runs `session` against a fresh server of `a` and one of `b`. After every op the two
/// answers must be equal after [`normalize`]; with `model`, each is also checked against
/// the model; at the end both served folders must hold the same files. With `err5`, the op
/// before the last two (the malformed item of [`crate::ops::malformed_session`]) must leave
/// the connection usable (the next `dir` is answered on it) or closed, as ERR-5 says for the
/// last code it got.
pub fn run_pair(
    session: &Session,
    a: Impl,
    b: Impl,
    model: bool,
    err5: bool,
) -> Result<(), String> {
    let sa = server_with(a, session);
    let sb = server_with(b, session);
    let mut ea = Executor::new(sa.addr);
    let mut eb = Executor::new(sb.addr);
    let mut m = Model::new(session);
    let mut log = String::new();
    let mut outputs = Vec::new();
    for (i, op) in session.ops.iter().enumerate() {
        let want = m.expect(op);
        let ga = ea.run(op).map_err(|e| format!("{a}: op {i}: {e}\n{log}"))?;
        let gb = eb.run(op).map_err(|e| format!("{b}: op {i}: {e}\n{log}"))?;
        let _ = writeln!(log, "  {i:>3}  C: {op:?}");
        for msg in &ga {
            let _ = writeln!(log, "         {msg:?}");
        }
        let (na, nb) = (normalize(&ga), normalize(&gb));
        if na != nb {
            return Err(format!(
                "op {i} ({op:?}): the servers differ\n{a}: {na:#?}\n{b}: {nb:#?}\nsession so far ({a}):\n{log}"
            ));
        }
        if model {
            m.check(&ga, &want)
                .map_err(|e| format!("op {i} ({op:?}): {e}\nsession so far ({a}):\n{log}"))?;
        }
        outputs.push(ga);
    }
    if err5 {
        check_err5(&session.ops, &outputs).map_err(|e| format!("{e}\n{log}"))?;
    }
    drop((ea, eb));
    let (fa, fb) = (folder(&sa.root)?, folder(&sb.root)?);
    if fa != fb {
        return Err(format!(
            "the served folders differ: {a}: {:?}, {b}: {:?}\n{log}",
            fa.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>(),
            fb.iter().map(|(n, d)| (n, d.len())).collect::<Vec<_>>()
        ));
    }
    for s in [&sa, &sb] {
        if !s.wait_staging_empty() {
            return Err(format!(
                "{}: the staging area was not emptied\n{log}",
                s.imp
            ));
        }
    }
    sa.stop().map_err(|e| format!("{a} server: {e}"))?;
    sb.stop().map_err(|e| format!("{b} server: {e}"))
}

/// ERR-5 for the malformed item (the third op from the end; `dir` and `close` follow): if
/// its last final reply has a closing code, the connection must have ended (EOF) and the
/// `dir` comes on a new connection; otherwise the `dir` is answered on the same connection.
fn check_err5(ops: &[Op], outputs: &[Vec<Msg>]) -> Result<(), String> {
    let n = ops.len();
    if n < 3 || !matches!(ops[n - 2], Op::Dir) {
        return Ok(());
    }
    let item = &outputs[n - 3];
    let last_final = item.iter().rev().find_map(|m| match m {
        Msg::Line(l) if l.starts_with(b"ok ") || l.starts_with(b"err ") || l == b"bye" => {
            Some(l.clone())
        }
        _ => None,
    });
    let ended = item.last() == Some(&Msg::Eof);
    let dir = &outputs[n - 2];
    let reconnected = matches!(dir.first(), Some(Msg::Greeting(_)));
    if let Some(last) = last_final {
        let closing = last == b"bye" || err_code(&last).is_some_and(closes);
        let shown = String::from_utf8_lossy(&last);
        if closing && (!ended || !reconnected) {
            return Err(format!(
                "ERR-5: after {shown:?} the connection must close; got {item:?} then {dir:?}"
            ));
        }
        if !closing && (ended || reconnected) {
            return Err(format!(
                "ERR-5: after {shown:?} the connection must stay usable; got {item:?} then {dir:?}"
            ));
        }
    }
    if !dir
        .iter()
        .any(|m| matches!(m, Msg::Line(l) if l.starts_with(b"ok dir ")))
    {
        return Err(format!(
            "the dir after the malformed item was not answered: {dir:?}"
        ));
    }
    Ok(())
}

/// A served folder's files: `(name, content)`, sorted by name.
type Files = Vec<(Vec<u8>, Vec<u8>)>;

/// The files of a served folder (the staging area aside), sorted by name.
fn folder(root: &std::path::Path) -> Result<Files, String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e.file_name().into_encoded_bytes();
        if name == crate::STAGING.as_bytes() {
            continue;
        }
        let data = std::fs::read(e.path()).map_err(|e| e.to_string())?;
        out.push((name, data));
    }
    out.sort();
    Ok(out)
}
