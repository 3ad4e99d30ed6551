//! The configurations the repository ships for the peers it is measured against (Kamailio in
//! front of rtpengine for the SIP load benchmark) are checked by the peer itself: a config
//! that Kamailio refuses would only be found in the middle of a benchmark run.

use std::path::Path;
use std::process::Command;

use crate::harness::require_tool;

/// `kamailio -c` parses the file and loads its modules without starting; `defines` are its
/// `-A` switches.
fn kamailio_check(config: &Path, defines: &[&str]) {
    let mut command = Command::new("kamailio");
    command.arg("-c").arg("-f").arg(config);
    for define in defines {
        command.args(["-A", define]);
    }
    let output = command.output().expect("kamailio runs");
    assert!(
        output.status.success(),
        "kamailio -c {} {defines:?} refused it:\n{}",
        config.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_load_benchmarks_kamailio_config_is_accepted_by_kamailio() {
    require_tool("kamailio", "kamailio");
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/sipp/kamailio-rtpengine.cfg");
    kamailio_check(&config, &[]);
    // The rtpengine module comes with kamailio-extra-modules.
    kamailio_check(&config, &["WITH_RTPENGINE"]);
    kamailio_check(&config, &["WITH_RTPENGINE", "WITH_BIGBUF"]);
}
