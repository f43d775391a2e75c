//! What each action requires and which options it takes: one row per action, so a new action
//! or option is one edit here (and its reader in [`super::decode`], its place in the command in
//! `mongo::ops::command`).

use crate::mongo::ops::Action;

/// A field an action requires.
#[derive(Clone, Copy)]
pub enum Required {
    Filter,
    Document,
    Documents,
    Update,
    Replacement,
    Pipeline,
    Key,
    Operations,
}

/// An option an action may take: each is read by `decode::read_option` into `ops::Options`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    Filter,
    Projection,
    Sort,
    Skip,
    Limit,
    BatchSize,
    Hint,
    Collation,
    Comment,
    Let,
    BypassDocumentValidation,
    AllowDiskUse,
    Upsert,
    ArrayFilters,
    ReturnDocument,
    Ordered,
    MaxTimeMS,
}

use Opt::*;

/// What each action requires and which options it takes (besides `maxTimeMS`, which every
/// action takes and a bulkWrite's operations do not).
pub fn spec(action: Action) -> (&'static [Required], &'static [Opt]) {
    const FIND: &[Opt] = &[
        Filter, Projection, Sort, Skip, Hint, Collation, Comment, Let,
    ];
    const UPDATE: &[Opt] = &[
        Upsert,
        ArrayFilters,
        Hint,
        Collation,
        BypassDocumentValidation,
        Comment,
        Let,
    ];
    const REPLACE: &[Opt] = &[
        Upsert,
        Hint,
        Collation,
        BypassDocumentValidation,
        Comment,
        Let,
    ];
    const DELETE: &[Opt] = &[Hint, Collation, Comment, Let];
    match action {
        Action::FindOne => (&[], FIND),
        Action::Find => (
            &[],
            &[
                Filter, Projection, Sort, Skip, Limit, BatchSize, Hint, Collation, Comment, Let,
            ],
        ),
        Action::InsertOne => (&[Required::Document], &[BypassDocumentValidation, Comment]),
        Action::InsertMany => (
            &[Required::Documents],
            &[Ordered, BypassDocumentValidation, Comment],
        ),
        Action::UpdateOne | Action::UpdateMany => (&[Required::Filter, Required::Update], UPDATE),
        Action::ReplaceOne => (&[Required::Filter, Required::Replacement], REPLACE),
        Action::DeleteOne | Action::DeleteMany => (&[Required::Filter], DELETE),
        Action::Aggregate => (
            &[Required::Pipeline],
            &[
                BatchSize,
                Hint,
                Collation,
                Comment,
                Let,
                AllowDiskUse,
                BypassDocumentValidation,
            ],
        ),
        Action::CountDocuments => (&[], &[Filter, Limit, Skip, Hint, Collation, Comment]),
        Action::EstimatedDocumentCount => (&[], &[Comment]),
        Action::Distinct => (&[Required::Key], &[Filter, Hint, Collation, Comment]),
        Action::FindOneAndUpdate => (
            &[Required::Filter, Required::Update],
            &[
                Projection,
                Sort,
                Upsert,
                ReturnDocument,
                ArrayFilters,
                Hint,
                Collation,
                BypassDocumentValidation,
                Comment,
                Let,
            ],
        ),
        Action::FindOneAndReplace => (
            &[Required::Filter, Required::Replacement],
            &[
                Projection,
                Sort,
                Upsert,
                ReturnDocument,
                Hint,
                Collation,
                BypassDocumentValidation,
                Comment,
                Let,
            ],
        ),
        Action::FindOneAndDelete => (
            &[Required::Filter],
            &[Projection, Sort, Hint, Collation, Comment, Let],
        ),
        Action::BulkWrite => (
            &[Required::Operations],
            &[Ordered, BypassDocumentValidation, Comment],
        ),
    }
}

/// The options `action` takes, as the request reads them (every action also takes `maxTimeMS`).
pub fn options_of(action: Action) -> impl Iterator<Item = Opt> {
    spec(action).1.iter().copied().chain([MaxTimeMS])
}

/// The fields each action accepts, for the OpenAPI document's test.
pub fn accepted_fields(action: Action) -> Vec<&'static str> {
    let (required, _) = spec(action);
    let mut names: Vec<&'static str> = required
        .iter()
        .map(|r| match r {
            Required::Filter => "filter",
            Required::Document => "document",
            Required::Documents => "documents",
            Required::Update => "update",
            Required::Replacement => "replacement",
            Required::Pipeline => "pipeline",
            Required::Key => "key",
            Required::Operations => "operations",
        })
        .collect();
    names.extend(options_of(action).map(|o| match o {
        Filter => "filter",
        Projection => "projection",
        Sort => "sort",
        Skip => "skip",
        Limit => "limit",
        BatchSize => "batchSize",
        Hint => "hint",
        Collation => "collation",
        Comment => "comment",
        Let => "let",
        BypassDocumentValidation => "bypassDocumentValidation",
        AllowDiskUse => "allowDiskUse",
        Upsert => "upsert",
        ArrayFilters => "arrayFilters",
        ReturnDocument => "returnDocument",
        Ordered => "ordered",
        MaxTimeMS => "maxTimeMS",
    }));
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document's name for an action's schema: `findOne` → `FindOne`.
    fn schema_name(action: Action) -> String {
        let name = action.name();
        name[..1].to_ascii_uppercase() + &name[1..]
    }

    fn properties(schemas: &serde_json::Value, name: &str) -> Vec<String> {
        let mut keys: Vec<String> = schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name} with properties in openapi.json"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_fields_each_action_and_bulk_operation_takes() {
        let openapi: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json");
        let schemas = &openapi["components"]["schemas"];
        for action in Action::ALL {
            let mut expected: Vec<String> = accepted_fields(action)
                .into_iter()
                .chain(["dataSource", "database", "collection"])
                .map(str::to_owned)
                .collect();
            expected.sort();
            let name = format!("{}Request", schema_name(action));
            assert_eq!(properties(schemas, &name), expected, "{name}");
            if action.is_bulk_item() {
                let mut in_bulk: Vec<String> = accepted_fields(action)
                    .into_iter()
                    .filter(|f| *f != "maxTimeMS")
                    .map(str::to_owned)
                    .collect();
                in_bulk.sort();
                let name = format!("Bulk{}", schema_name(action));
                assert_eq!(properties(schemas, &name), in_bulk, "{name}");
            }
        }
    }
}
