//! `lotline user add|list|remove|passwd`: user management on a running
//! server through the `lotline.user.*` Flight actions (admin only, except
//! `passwd` of one's own password).
//!
//! New passwords never come from the command line, where `ps` and shell
//! history would keep them: a prompt without echo, `--password-stdin`, or
//! `LOTLINE_NEW_PASSWORD`.

use std::io::{BufRead, IsTerminal};

use crate::server::actions::{
    USER_ADD, USER_LIST, USER_PASSWD, USER_REMOVE, UserAdd, UserList, UserPasswd, UserRemove,
};
use crate::server::auth::Role;

use super::{ClientError, ConnectArgs, connect, run_action};

/// Where a new password comes from.
#[derive(clap::Args, Debug, Clone)]
pub struct NewPassword {
    /// Read the new password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Add a user with a role; asks for the password (or --password-stdin, LOTLINE_NEW_PASSWORD)
    Add {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Its role: reader (queries), writer (queries and writes), admin (everything)
        #[arg(long, value_enum)]
        role: Role,
        #[command(flatten)]
        new_password: NewPassword,
        /// The new user's name
        name: String,
    },
    /// List users and their roles
    List {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove a user; its logins and tokens stop working at once
    Remove {
        #[command(flatten)]
        connect: ConnectArgs,
        name: String,
    },
    /// Set your own password, or (as admin) another user's; ends that user's tokens
    Passwd {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        new_password: NewPassword,
        /// Whose password [default: the --user logging in]
        name: Option<String>,
    },
}

/// The new password: stdin, the environment, or a prompt typed twice.
fn read_new_password(source: &NewPassword, name: &str) -> Result<String, ClientError> {
    let terminal = |e: std::io::Error| ClientError::Terminal(e.to_string());
    if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(terminal)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(password) = std::env::var("LOTLINE_NEW_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Usage(format!(
            "no new password for user '{name}': pass --password-stdin and pipe it in, \
             set LOTLINE_NEW_PASSWORD, or run in a terminal to be asked"
        )));
    }
    let first =
        rpassword::prompt_password(format!("New password for '{name}': ")).map_err(terminal)?;
    let again = rpassword::prompt_password("Again: ").map_err(terminal)?;
    if first != again {
        return Err(ClientError::Usage("the passwords do not match".into()));
    }
    Ok(first)
}

/// Renders users as an aligned two-column table.
fn render(list: &UserList) -> String {
    let width = list
        .users
        .iter()
        .map(|u| u.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = format!("{:width$}  role\n", "name");
    for u in &list.users {
        out.push_str(&format!("{:width$}  {}\n", u.name, u.role));
    }
    out
}

fn json(body: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(body).expect("action bodies serialize")
}

fn users_of(body: &[u8]) -> Result<UserList, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Flight {
        context: "reading the server's user list".into(),
        message: e.to_string(),
    })
}

/// Runs one `lotline user` command; returns what to print.
pub async fn run_user(command: &UserCommand) -> Result<String, ClientError> {
    let (connect_args, action, body) = match command {
        UserCommand::Add {
            connect,
            role,
            new_password,
            name,
        } => {
            let password = read_new_password(new_password, name)?;
            let add = UserAdd {
                name: name.clone(),
                password,
                role: *role,
            };
            (connect, USER_ADD, json(&add))
        }
        UserCommand::List { connect, .. } => (connect, USER_LIST, Vec::new()),
        UserCommand::Remove { connect, name } => (
            connect,
            USER_REMOVE,
            json(&UserRemove { name: name.clone() }),
        ),
        UserCommand::Passwd {
            connect,
            new_password,
            name,
        } => {
            let whose = name.as_deref().unwrap_or(&connect.user);
            let password = read_new_password(new_password, whose)?;
            let passwd = UserPasswd {
                name: name.clone(),
                password,
            };
            (connect, USER_PASSWD, json(&passwd))
        }
    };
    let mut client = connect(connect_args).await?;
    let reply = run_action(&mut client, action, body).await?;
    Ok(match command {
        UserCommand::List { json: true, .. } => String::from_utf8_lossy(&reply).into_owned() + "\n",
        UserCommand::List { .. } => render(&users_of(&reply)?),
        UserCommand::Add { name, role, .. } => format!("added user '{name}' with role {role}\n"),
        UserCommand::Remove { name, .. } => format!("removed user '{name}'\n"),
        UserCommand::Passwd { name, connect, .. } => format!(
            "password of '{}' changed; its other sessions must log in again\n",
            name.as_deref().unwrap_or(&connect.user)
        ),
    })
}
