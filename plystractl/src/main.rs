//! plystractl: install, migrate, check and bootstrap Plystra. Reads the server's configuration from the
//! environment (DATABASE_URL first, then PLYSTRA_DATABASE_URL). Exit code 0 on success, 1 when a command
//! fails or finds a problem, 2 on a usage or configuration error.

/// Every line the commands print goes through here: standard output closed early (`plystractl migrate status |
/// head -1`) ends the command quietly with the status a shell gives a process ended by SIGPIPE, as other Unix tools
/// end, where std's `println!` panicked on the broken pipe.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

mod audit_archive;
mod commands;

/// Ends the command when its standard output cannot be written.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("plystractl: cannot write to standard output: {e}");
    std::process::exit(1);
}

use clap::{Parser, Subcommand};
use commands::{self as cli, CliError, IfExists};
use plystra_http::config::Config;

#[derive(Parser)]
#[command(
    name = "plystractl",
    version,
    about = "Install, migrate, check and bootstrap Plystra",
    long_about = "Install, migrate, check and bootstrap Plystra. The database comes from DATABASE_URL (or \
                  PLYSTRA_DATABASE_URL), like the server's; every other setting is the server's too."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Versioned migrations: the plystra extension and its recorded ledger.
    Migrate {
        #[command(subcommand)]
        action: Migrate,
    },
    /// Compare the live schema with what the migrations describe.
    Schema {
        #[command(subcommand)]
        action: Schema,
    },
    /// Check environment, configuration, database, migrations, schema and readiness; warn about weak secrets.
    #[command(long_about = "Prints, in order: environment, configuration (in production: every refusal the \
        server would make), database, migrations, schema (needs CREATEDB, see `schema check`), service readiness, \
        then warnings about weak secrets. Exit code 1 when any check fails.")]
    Doctor,
    /// Load the Finance Reviewer demo data (sql/demo.sql, embedded; idempotent).
    SeedDemo,
    /// Admin grants.
    Admin {
        #[command(subcommand)]
        action: Admin,
    },
    /// The audit log's hash chains.
    Audit {
        #[command(subcommand)]
        action: Audit,
    },
}

#[derive(Subcommand)]
enum Migrate {
    /// Print `version name applied|pending|checksum-mismatch` for every migration of this build.
    Status,
    /// Print the pending migrations.
    Plan,
    /// Install the extension (CREATE EXTENSION IF NOT EXISTS plystra) or update it (ALTER EXTENSION plystra
    /// UPDATE); fails on a changed applied migration. Prints `applied <version> <name>` for each new one.
    Up,
    /// Fail on a pending migration or an applied one whose file changed; prints "migrations verified".
    Verify,
}

#[derive(Subcommand)]
enum Schema {
    /// Build the schema the migrations describe in a scratch database and compare catalogs (tables, columns,
    /// defaults, constraints, indexes, triggers, migration functions); any drift fails. The scratch database
    /// is created and dropped on the same server, so the role needs CREATEDB.
    Check,
}

#[derive(Subcommand)]
enum Admin {
    /// Grant a user instance_super_admin (permission `*`). The default grant id is
    /// `ag_<user id, sanitized>_instance_super_admin`.
    BootstrapSuperAdmin {
        /// The user to make super admin (must exist and be active).
        #[arg(long)]
        user_id: String,
        /// The Member recorded on the grant.
        #[arg(long)]
        member_id: Option<String>,
        /// The grant's id (default ag_<user id>_instance_super_admin).
        #[arg(long)]
        grant_id: Option<String>,
        /// What to do when a grant with that id exists: fail (error) or succeed without change (ok).
        #[arg(long, value_enum, default_value = "error")]
        if_exists: IfExists,
    },
}

#[derive(Subcommand)]
enum Audit {
    /// Verify every Space's audit chain: one line per chain; exit 1 naming the first broken link. After an
    /// archive, the live chain is checked from the archived head it continues from. With --archive FILE, verify
    /// an archive file instead, without a database: exit 1 naming the first bad line.
    Verify {
        /// An archive file written by `plystractl audit archive` (no database is used).
        #[arg(long)]
        archive: Option<std::path::PathBuf>,
    },
    /// Seal committed, not yet sealed audit rows now (the audit writer does it every second).
    Seal,
    /// Archive every monthly audit partition that ends on or before --before to a new file, then detach them.
    #[command(
        long_about = "Archive every monthly partition of plystra.audit_logs whose month ends on or before         --before (whole partitions only; dates are UTC) to --to, a new file (JSON lines: a header, one line per row         with the exact text its hash covers, a trailer with the chain runs and the SHA-256 of the content). Every         chain is verified first: when one does not verify, or a partition holds unsealed rows, nothing is written         or changed. Then the archive, the last archived link of each chain and an audit row are recorded, and the         partitions are detached (not dropped: see `audit drop`). Needs the extension's owner."
    )]
    Archive {
        /// The end of the archived time: partitions whose range ends on or before it (e.g. 2026-01-01).
        #[arg(long)]
        before: String,
        /// The archive file to create (never overwritten).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Drop the table of a partition an archive detached (recorded, with an audit row). Needs the owner.
    Drop {
        /// The partition's name, as `audit archive` and `audit partitions` print it (audit_logs_YYYY_MM).
        #[arg(long)]
        partition: String,
    },
    /// Make the coming months' audit partitions (the audit writer does it hourly) and list the partitions. Waits at
    /// most 5 s for the audit log (every audited decision waits behind that wait); a month left without its partition
    /// is named, and the command fails.
    Partitions {
        /// How many months after the current one get a partition (0 to 120).
        #[arg(long, default_value_t = 3)]
        months_ahead: i32,
    },
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(run(cli.command));
    if let Err(e) = result {
        eprintln!("plystractl: {e}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    let vars: std::collections::HashMap<String, String> = std::env::vars().collect();
    if let Command::Doctor = command {
        return cli::doctor(&vars).await;
    }
    // An archive file is verified without a database (and without configuration).
    if let Command::Audit { action: Audit::Verify { archive: Some(path) } } = &command {
        return audit_archive::verify_archive_command(path);
    }
    let config = match Config::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("plystractl: {e}");
            std::process::exit(2);
        }
    };
    let mut client = plystra_http::migrate::connect(&config.database_url).await?;
    match command {
        Command::Migrate { action } => match action {
            Migrate::Status => cli::migrate_status(&client).await,
            Migrate::Plan => cli::migrate_plan(&client).await,
            Migrate::Up => cli::migrate_up(&client).await,
            Migrate::Verify => cli::migrate_verify(&client).await,
        },
        Command::Schema { action: Schema::Check } => cli::schema_check(&config.database_url, &client).await,
        Command::SeedDemo => cli::seed_demo(&client).await,
        Command::Admin { action: Admin::BootstrapSuperAdmin { user_id, member_id, grant_id, if_exists } } => {
            cli::bootstrap_super_admin(&mut client, &user_id, member_id.as_deref(), grant_id.as_deref(), if_exists)
                .await
        }
        Command::Audit { action } => match action {
            Audit::Verify { archive: _ } => cli::audit_verify(&client).await,
            Audit::Seal => cli::audit_seal(&client).await,
            Audit::Archive { before, to } => audit_archive::archive(&mut client, &before, &to).await,
            Audit::Drop { partition } => audit_archive::drop_partition(&client, &partition).await,
            Audit::Partitions { months_ahead } => audit_archive::partitions(&mut client, months_ahead).await,
        },
        Command::Doctor => unreachable!("handled above"),
    }
}
