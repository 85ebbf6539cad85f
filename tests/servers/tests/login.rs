//! Every reference client logs in to every reference server (spec section 16): with a key
//! and with a password, over TLS, each user then served their own folder; a wrong password,
//! and no login at all, are refused as the spec says.

use ferry_sync::client::{AuthFailure, ClientError, ClientOptions};
use ferry_test_support::users::{self, BOB_PASSWORD};
use ferry_test_support::{Impl, TestClient};

const ALL: [Impl; 4] = [Impl::Threads, Impl::AsyncStd, Impl::Tokio, Impl::Smol];

fn names(c: &mut TestClient) -> Vec<String> {
    c.dir()
        .expect("dir")
        .into_iter()
        .map(|e| e.name.as_str().to_owned())
        .collect()
}

fn every_client_logs_in(server_imp: Impl) {
    let (server, users) = users::start(server_imp, |_| {});
    for client_imp in ALL {
        let with = |login| {
            server.client_options(ClientOptions {
                login: Some(login),
                ..ClientOptions::default()
            })
        };
        let what = format!("{client_imp} client, {server_imp} server");

        let mut alice = TestClient::connect_with(client_imp, server.addr, &with(users.alice()))
            .unwrap_or_else(|e| panic!("{what}: alice: {e}"));
        assert_eq!(names(&mut alice), ["alice.txt"], "{what}");
        let mut bob =
            TestClient::connect_with(client_imp, server.addr, &with(users.bob(BOB_PASSWORD)))
                .unwrap_or_else(|e| panic!("{what}: bob: {e}"));
        assert_eq!(names(&mut bob), ["bob.txt"], "{what}");

        match TestClient::connect_with(client_imp, server.addr, &with(users.bob("wrong"))) {
            Err(ClientError::Auth(a)) => match a.failure {
                AuthFailure::Refused(r) => assert_eq!(r.code.get(), 535, "{what}"),
                other => panic!("{what}: {other:?}"),
            },
            other => panic!("{what}: a wrong password: {other:?}"),
        }
        let mut nobody = TestClient::connect_with(
            client_imp,
            server.addr,
            &server.client_options(ClientOptions::default()),
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        match nobody.dir() {
            Err(ClientError::Refused(r)) => assert_eq!(r.code.get(), 530, "{what}"),
            other => panic!("{what}: a dir without a login: {other:?}"),
        }
    }
}

#[test]
fn every_client_logs_in_to_threads() {
    every_client_logs_in(Impl::Threads);
}

#[test]
fn every_client_logs_in_to_async_std() {
    every_client_logs_in(Impl::AsyncStd);
}

#[test]
fn every_client_logs_in_to_tokio() {
    every_client_logs_in(Impl::Tokio);
}

#[test]
fn every_client_logs_in_to_smol() {
    every_client_logs_in(Impl::Smol);
}
