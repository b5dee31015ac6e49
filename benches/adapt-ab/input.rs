//! The generated Profilingfiles the adapt benchmarks read (`benches/adapt.rs`,
//! `benches/adapt_ab.sh`).

use std::fmt::Write;

/// A Profilingfile of at least `target` bytes, which `caddyprof run` accepts (every basic
/// auth user has a password, every profiler an address): `caddyprof validate` has little to
/// say about it.
pub fn generate(target: usize) -> String {
    let mut out = String::from(
        "# generated for the adapt benchmark\n\
         (team) {\n\
         \tapplication_name \"{args[0]} service\"\n\
         \ttenant_id {args[1]}\n\
         \tupload_rate 10s\n\
         \tprofile_types {args[2:]}\n\
         }\n\n\
         profiling {\n\
         \tcpu_profile_rate 100\n\
         \tprofile_types cpu heap allocs goroutine\n",
    );
    let mut i = 0;
    while out.len() < target {
        match i % 4 {
            0 => writeln!(
                out,
                "\tpyroscope http://pyroscope-{i}.internal:4040 {{\n\
                 \t\timport team app-{i} tenant-{i} cpu heap\n\
                 \t\tbasic_auth_user \"user {i}\"\n\
                 \t\tbasic_auth_password \"password {i}\"\n\
                 \t}}"
            ),
            1 => writeln!(
                out,
                "\tpyroscope {{\n\
                 \t\tserver_address https://pyroscope.example.com:{}\n\
                 \t\tauth_token <<TOKEN\n\
                 \t\t\tsecret-token-{i}\n\
                 \t\t\tTOKEN\n\
                 \t\tparameters {{\n\
                 \t\t\tblock_profile_rate {i}\n\
                 \t\t\tmutex_profile_fraction 10\n\
                 \t\t\tprofile_types block mutex\n\
                 \t\t}}\n\
                 \t}}",
                4000 + i % 1000
            ),
            2 => writeln!(
                out,
                "\t# profefe collector {i}\n\
                 \tprofefe http://profefe-{i}.internal:10100 {{\n\
                 \t\tservice `svc-{i}`\n\
                 \t\ttimeout 30s\n\
                 \t}}"
            ),
            _ => writeln!(out, "\tprofefe http://profefe.internal:10100"),
        }
        .expect("writing to a String");
        i += 1;
    }
    out.push_str("}\n");
    out
}
