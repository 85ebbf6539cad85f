//! `ferry shell ADDR`: the teaching program's session, over ferry/1. Commands are read
//! from stdin, one per line: `dir`, `get NAME`, `put NAME`, `replace NAME`, `close` (also
//! `quit`, `exit`, or end of input), `help`. A prompt is shown only when stdin is a terminal.

use std::io::{self, BufRead, IsTerminal as _, Write};
use std::path::Path;

use ferry_sync::client::{
    ClientError, GetOptions, PutOptions, local_path, name_for_local, visible,
};
use ferry_wire::{Code, FileName, PutMode};

use crate::ClientArgs;
use crate::addr::ServerAddr;
use crate::commands::{connect, print_listing};
use crate::engine::AnyClient;
use crate::exit;
use crate::progress::Bars;

const HELP: &str = "\
commands:
  dir            list the files on the server
  get NAME       download NAME into the current folder
  put NAME       upload the file NAME from the current folder (fails if it exists there)
  replace NAME   upload the file NAME, replacing the server's copy
  close          end the session (also: quit, exit, end of input)
  help           this text
NAME is the rest of the line, spaces included.";

/// Runs the shell; returns the exit code: 0 after `close` or end of input, else the code
/// of the error that ended the session.
pub fn run(how: ClientArgs, addr: &ServerAddr) -> u8 {
    let mut client = match connect(how, addr) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let interactive = io::stdin().is_terminal();
    if interactive {
        eprintln!("connected to {addr}; type help for the commands");
    }
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    loop {
        if interactive {
            print!("ferry> ");
            let _ = io::stdout().flush();
        }
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => {
                if interactive {
                    println!();
                }
                return finish(client);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("ferry: reading commands: {e}");
                return finish(client);
            }
        }
        let trimmed = line.trim();
        let (command, rest) = match trimmed.split_once(char::is_whitespace) {
            Some((c, r)) => (c, r.trim()),
            None => (trimmed, ""),
        };
        let outcome = match command {
            "" => Ok(()),
            "help" | "?" => {
                println!("{HELP}");
                Ok(())
            }
            "close" | "quit" | "exit" => return finish(client),
            "dir" if rest.is_empty() => dir(&mut client),
            "get" if !rest.is_empty() => get(&mut client, rest),
            "put" if !rest.is_empty() => put(&mut client, rest, PutMode::New),
            "replace" if !rest.is_empty() => put(&mut client, rest, PutMode::Replace),
            "dir" => {
                println!("usage: dir");
                Ok(())
            }
            "get" | "put" | "replace" => {
                println!("usage: {command} NAME");
                Ok(())
            }
            other => {
                println!(
                    "unknown command {:?}; type help for the commands",
                    visible(other)
                );
                Ok(())
            }
        };
        let _ = io::stdout().flush();
        if let Err(e) = outcome {
            if !client.is_open() {
                eprintln!("ferry: the session has ended");
                return exit::for_error(&e);
            }
        }
    }
}

/// `close`, then exit 0.
fn finish(client: AnyClient) -> u8 {
    if client.is_open() {
        match client.close() {
            Ok(()) => println!("bye"),
            Err(e) => eprintln!("ferry: close: {e}"),
        }
    }
    exit::OK
}

fn show(what: &str, e: &ClientError) {
    println!("error: {what}: {e}");
    if e.code() == Some(Code::EXISTS) {
        println!("hint: `replace NAME` overwrites the server's copy");
    }
}

fn dir(client: &mut AnyClient) -> Result<(), ClientError> {
    match client.dir() {
        Ok(entries) if entries.is_empty() => {
            println!("(no files)");
            Ok(())
        }
        Ok(entries) => {
            let _ = print_listing(&mut io::stdout().lock(), &entries);
            Ok(())
        }
        Err(e) => {
            show("dir", &e);
            Err(e)
        }
    }
}

fn get(client: &mut AnyClient, name: &str) -> Result<(), ClientError> {
    let name = match FileName::from_local(name) {
        Ok(n) => n,
        Err(e) => {
            println!("error: {:?} is not a valid file name: {e}", visible(name));
            return Ok(());
        }
    };
    let shown = visible(name.as_str());
    let mut bars = Bars::new();
    let result = local_path(Path::new("."), &name).and_then(|dest| {
        client.get_to_path(&name, &dest, &GetOptions::default(), &mut |p| {
            bars.update(p)
        })
    });
    bars.finish();
    match result {
        Ok(report) => {
            println!("received {shown} ({} bytes)", report.size);
            Ok(())
        }
        Err(e) => {
            show(&format!("get {shown}"), &e);
            Err(e)
        }
    }
}

fn put(client: &mut AnyClient, file: &str, mode: PutMode) -> Result<(), ClientError> {
    let path = Path::new(file);
    let mut bars = Bars::new();
    let opts = PutOptions {
        mode,
        ..PutOptions::default()
    };
    let result = name_for_local(path)
        .and_then(|name| client.put_from_path(path, Some(&name), &opts, &mut |p| bars.update(p)));
    bars.finish();
    match result {
        Ok(report) => {
            println!(
                "sent {} ({} bytes)",
                visible(report.name.as_str()),
                report.size
            );
            Ok(())
        }
        Err(e) => {
            show(&format!("put {file}"), &e);
            Err(e)
        }
    }
}
