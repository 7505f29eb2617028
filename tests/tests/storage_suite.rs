//! Scenario (a): openraft's storage test suite against the RocksDB store.

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use rekap_node::raft::TypeConfig;
use rekap_node::store::{self, LogStore, StateMachineStore};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = store::Owner {
            node_id: 1,
            cluster: "storage-suite".into(),
        };
        let (log, sm, _closer) = store::open(dir.path(), &owner).expect("open store");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).await.expect("storage suite");
}
