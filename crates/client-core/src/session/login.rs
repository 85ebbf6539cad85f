//! The login after the greeting (the `auth` extension, spec section 16): the first operation
//! of a session with [`ClientOptions::login`](crate::ClientOptions::login) completes only
//! once the server has accepted the user. Nothing else is sent meanwhile (AUTH-5: `hold`).

use ferry_wire::auth::{self as auth_wire, AuthReply, AuthRequest};
use ferry_wire::{DecodeError, Reply, decode_reply};

use super::{ClientSession, Flow, Kind, Outcome, read_failed, unexpected};
use crate::ClientError;
use crate::login::{AuthError, AuthFailure, Login, ScramClient};

/// Where a login stands.
#[derive(Debug)]
pub(super) struct LoginState {
    login: Login,
    /// The SCRAM exchange, until `ok auth`.
    exchange: Option<Box<dyn ScramClient>>,
    /// `auth-final` was sent: only the final reply may come.
    final_sent: bool,
}

/// A reply line during a login: one of the extension's, or an `err`.
enum LoginReply {
    Auth(AuthReply),
    Other(Reply),
}

fn decode_login_reply(buf: &[u8]) -> Result<(LoginReply, usize), DecodeError> {
    if buf.starts_with(b"ok auth ") || buf.starts_with(b"more ") {
        auth_wire::decode_auth_reply(buf).map(|(r, n)| (LoginReply::Auth(r), n))
    } else {
        decode_reply(buf).map(|(r, n)| (LoginReply::Other(r), n))
    }
}

impl ClientSession {
    /// The greeting was accepted: sends the `auth` request of `login`, or fails the first
    /// operation when the login cannot be made on this connection.
    pub(super) fn begin_login(&mut self, login: Login) -> Flow {
        let tls = self.options.tls.is_some();
        let fail = |failure| {
            ClientError::Auth(AuthError {
                user: login.user().as_str().to_owned(),
                with: login.prover().describe(),
                failure,
            })
        };
        if !tls && !login.plain_allowed() {
            self.complete(Err(fail(AuthFailure::PlainConnection)));
            return Flow::Again;
        }
        let offered = self.greeting.as_ref().and_then(auth_wire::offered);
        let Some(offered) = offered else {
            self.complete(Err(fail(AuthFailure::NotOffered)));
            return Flow::Again;
        };
        let wanted = login.prover().mechanism(tls);
        if !offered.contains(&wanted) {
            self.complete(Err(fail(AuthFailure::Mechanism { wanted, offered })));
            return Flow::Again;
        }
        if tls && self.cb.is_none() {
            let why = "the connection's channel binding is unknown".to_owned();
            self.complete(Err(fail(AuthFailure::Local(why))));
            return Flow::Again;
        }
        let begun = match login.prover().begin(login.user(), self.cb.as_ref()) {
            Ok(b) => b,
            Err(why) => {
                self.complete(Err(fail(AuthFailure::Local(why))));
                return Flow::Again;
            }
        };
        let end = self.queue_out(|out| begun.request.encode_into(out));
        if let Some(op) = self.ops.front_mut() {
            op.kind = Kind::Login(Box::new(LoginState {
                login,
                exchange: begun.exchange,
                final_sent: false,
            }));
            op.end = Some(end);
        }
        // AUTH-5: nothing else until the final reply.
        self.hold = true;
        Flow::Again
    }

    /// A reply to the login's `auth` or `auth-final`.
    pub(super) fn login_step(&mut self) -> Flow {
        let reply = match self.next_line(decode_login_reply) {
            Ok(Some(r)) => r,
            Ok(None) => return Flow::NeedInput,
            Err(f) => {
                self.hold = false;
                self.complete(Err(read_failed(f, "reply to auth", false)));
                return Flow::Again;
            }
        };
        let Some(mut op) = self.ops.pop_front() else {
            return Flow::Nothing;
        };
        let Kind::Login(state) = &mut op.kind else {
            self.ops.push_front(op);
            return Flow::Nothing;
        };
        let user = state.login.user().clone();
        let fail = |state: &LoginState, failure| {
            ClientError::Auth(AuthError {
                user: user.as_str().to_owned(),
                with: state.login.prover().describe(),
                failure,
            })
        };
        let result = match reply {
            LoginReply::Other(Reply::Err(e)) => Err(fail(state, AuthFailure::Refused(e))),
            LoginReply::Other(other) => Err(unexpected(&other, "auth")),
            LoginReply::Auth(AuthReply::More { server_first }) => {
                let step = match (&mut state.exchange, state.final_sent) {
                    (Some(x), false) => x.step(&server_first),
                    _ => Err("`more` where the exchange has no further step".to_owned()),
                };
                match step {
                    Ok(client_final) => {
                        state.final_sent = true;
                        let request = AuthRequest::Final { client_final };
                        let end = self.queue_out(|out| request.encode_into(out));
                        op.end = Some(end);
                        self.ops.push_front(op);
                        return Flow::Again;
                    }
                    Err(why) => Err(fail(state, AuthFailure::Server(why))),
                }
            }
            LoginReply::Auth(AuthReply::Ok {
                user: accepted,
                server_final,
            }) => {
                let proven = match (state.exchange.take(), server_final) {
                    _ if accepted != user => {
                        Err(format!("it accepted the login as {}", accepted.as_str()))
                    }
                    (Some(x), Some(f)) if state.final_sent => x.finish(&f),
                    (Some(_), _) => Err("no server signature (AUTH-15)".to_owned()),
                    (None, None) => Ok(()),
                    (None, Some(_)) => Err("a SCRAM answer to a key's login".to_owned()),
                };
                proven
                    .map(|()| Outcome::Connected)
                    .map_err(|why| fail(state, AuthFailure::Server(why)))
            }
        };
        self.hold = false;
        self.finish(op, result);
        Flow::Again
    }
}
