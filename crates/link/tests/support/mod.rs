//! What the Spark equivalence tests of this crate share.

use std::path::{Path, PathBuf};

/// The Python with pyspark that `scripts/spark-venv.sh` makes, or a failure that says so.
pub fn spark_python() -> PathBuf {
    let python = linklab_link::find_python(None, &[Path::new(env!("CARGO_MANIFEST_DIR"))]);
    let has_pyspark = std::process::Command::new(&python)
        .args(["-c", "import pyspark"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_pyspark,
        "{} cannot import pyspark: run scripts/spark-venv.sh (it needs Java 17) first",
        python.display()
    );
    python
}
