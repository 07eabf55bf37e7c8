//! plystractl: install, migrate, check and bootstrap Plystra. Reads the server's configuration from the
//! environment (DATABASE_URL first, then PLYSTRA_DATABASE_URL). Exit code 0 on success, 1 when a command
//! fails or finds a problem, 2 on a usage or configuration error.

use clap::{Parser, Subcommand};
use plystra_http::cli::{self, CliError, IfExists};
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
    /// Verify every Space's audit chain: one line per chain; exit 1 naming the first broken link.
    Verify,
    /// Seal committed, not yet sealed audit rows now (the audit writer does it every second).
    Seal,
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
    let config = match Config::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("plystractl: {e}");
            std::process::exit(2);
        }
    };
    let mut client = cli::connect(&config.database_url).await?;
    match command {
        Command::Migrate { action } => match action {
            Migrate::Status => cli::migrate_status(&client).await,
            Migrate::Plan => cli::migrate_plan(&client).await,
            Migrate::Up => cli::migrate_up(&client, false).await,
            Migrate::Verify => cli::migrate_verify(&client).await,
        },
        Command::Schema { action: Schema::Check } => cli::schema_check(&config.database_url, &client).await,
        Command::SeedDemo => cli::seed_demo(&client).await,
        Command::Admin { action: Admin::BootstrapSuperAdmin { user_id, member_id, grant_id, if_exists } } => {
            cli::bootstrap_super_admin(&mut client, &user_id, member_id.as_deref(), grant_id.as_deref(), if_exists)
                .await
        }
        Command::Audit { action } => match action {
            Audit::Verify => cli::audit_verify(&client).await,
            Audit::Seal => cli::audit_seal(&client).await,
        },
        Command::Doctor => unreachable!("handled above"),
    }
}
