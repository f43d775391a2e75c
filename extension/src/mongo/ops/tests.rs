use super::*;
use bson::doc;

fn op(action: Action, options: Options, payload: Payload) -> Operation {
    Operation {
        action,
        options,
        payload,
    }
}

#[test]
fn every_action_has_a_name_that_reads_back() {
    for action in Action::ALL {
        assert_eq!(Action::from_name(action.name()), Some(action));
    }
    assert_eq!(Action::from_name("drop"), None);
}

#[test]
fn options_go_where_each_command_wants_them() {
    let options = Options {
        filter: Some(rawdoc! {"a": 1}),
        hint: Some(RawBson::String("a_1".into())),
        collation: Some(rawdoc! {"locale": "en"}),
        comment: Some(RawBson::String("c".into())),
        upsert: Some(true),
        ..Options::default()
    };
    let update = command(
        &op(
            Action::UpdateOne,
            options.clone(),
            Payload::Update(Update::Operators(rawdoc! {"$set": {"b": 1}})),
        ),
        "items",
    );
    assert_eq!(
        update.to_document().expect("well formed"),
        doc! {"update": "items", "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 1}}, "multi": false,
        "upsert": true, "hint": "a_1", "collation": {"locale": "en"}}], "ordered": true, "comment": "c"}
    );
    let find = command(&op(Action::FindOne, options, Payload::None), "items");
    assert_eq!(
        find.to_document().expect("well formed"),
        doc! {"find": "items", "filter": {"a": 1}, "limit": 1, "singleBatch": true,
        "hint": "a_1", "collation": {"locale": "en"}, "comment": "c"}
    );
}

#[test]
fn count_documents_is_an_aggregation_and_find_one_and_delete_removes() {
    let count = command(
        &op(
            Action::CountDocuments,
            Options {
                skip: Some(1),
                limit: Some(5),
                ..Options::default()
            },
            Payload::None,
        ),
        "c",
    );
    let count = count.to_document().expect("well formed");
    assert_eq!(
        count.get_array("pipeline").map(Vec::len).ok(),
        Some(4),
        "{count}"
    );
    let delete = command(
        &op(Action::FindOneAndDelete, Options::default(), Payload::None),
        "c",
    );
    assert_eq!(delete.get_bool("remove").ok(), Some(true));
    assert!(matches!(delete.get("new"), Ok(None)));
}

#[test]
fn an_id_is_given_first_unless_the_document_has_one() {
    let given = with_id(rawdoc! {"a": 1});
    let first = given.iter().flatten().next().map(|(key, _)| key);
    assert_eq!(first, Some("_id"));
    assert!(given.get_object_id("_id").is_ok());
    assert_eq!(
        with_id(rawdoc! {"a": 1, "_id": 7}),
        rawdoc! {"a": 1, "_id": 7}
    );
}
