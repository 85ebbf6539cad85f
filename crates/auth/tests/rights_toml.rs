//! Rights in the users file: TOML arrays of names (`ferry_proto::rights` with serde).

use ferry_auth::rights::Rights;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Doc {
    rights: Rights,
}

#[test]
fn toml_arrays() {
    let d: Doc = toml::from_str("rights = [\"read\", \"list\"]").expect("toml");
    assert_eq!(d.rights, Rights::READ_ONLY);
    assert_eq!(
        toml::to_string(&d).expect("ser").trim(),
        "rights = [\"list\", \"read\"]"
    );
    let empty: Doc = toml::from_str("rights = []").expect("empty");
    assert!(empty.rights.is_empty());
    let e = toml::from_str::<Doc>("rights = [\"list\", \"wrte\"]").expect_err("typo");
    assert!(e.to_string().contains("unknown right \"wrte\""), "{e}");
    assert!(toml::from_str::<Doc>("rights = \"list,read\"").is_err());
}
