"""RFC 9610 JMAP for Contacts over HTTP against a real node, on both backends:
AddressBook/get, /changes, /set; ContactCard/get, /changes, /set, /query, /queryChanges;
the session's capabilities; and both-way visibility with CardDAV (httpx PUT, GET,
REPORT sync-collection on the same node)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from hirondelle.store import journal
from tests.jmap.conftest import ADDRESS, JmapClient, JmapNode, basic

CONTACTS = "urn:ietf:params:jmap:contacts"
USING = ["urn:ietf:params:jmap:core", CONTACTS]
DAV = "DAV:"


def call(
    client: JmapClient, name: str, args: dict[str, Any], *, expect: str | None = None
) -> dict[str, Any]:
    """One method call with the contacts capability; the response must be ``expect``
    (the method name by default)."""
    answer = client.request([[name, {"accountId": client.account_id, **args}, "c0"]], using=USING)
    got_name, got_args, call_id = answer["methodResponses"][0]
    assert call_id == "c0"
    assert got_name == (expect or name), answer["methodResponses"]
    result: dict[str, Any] = got_args
    return result


def error(client: JmapClient, name: str, args: dict[str, Any], kind: str) -> dict[str, Any]:
    result = call(client, name, args, expect="error")
    assert result["type"] == kind, result
    return result


def default_book(client: JmapClient) -> str:
    books = call(client, "AddressBook/get", {"ids": None})["list"]
    (default,) = [b["id"] for b in books if b["isDefault"]]
    return str(default)


def create_card(client: JmapClient, **card: Any) -> str:
    card.setdefault("addressBookIds", {default_book(client): True})
    result = call(client, "ContactCard/set", {"create": {"k": card}})
    assert not result.get("notCreated"), result
    return str(result["created"]["k"]["id"])


def dav(node: JmapNode) -> httpx.Client:
    return httpx.Client(
        base_url=node.base_url, headers={"Authorization": basic(ADDRESS)}, timeout=30
    )


def book_path(client: JmapClient, book_id: str, node: JmapNode) -> str:
    """The CardDAV URL of an address book (its collection name, read from the store)."""
    from hirondelle.store import groupware

    number = int(book_id[1:])
    collection = node.run(
        node.services.database.read(lambda conn: groupware.get_collection_by_id(conn, number))
    )
    assert collection is not None
    return f"/dav/{ADDRESS}/{collection.name}/"


def sync(http: httpx.Client, path: str, token: str = "") -> tuple[str, list[str], list[str]]:
    """RFC 6578 sync-collection: (new token, changed hrefs, removed hrefs)."""
    body = (
        f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    response = http.request(
        "REPORT", path, content=body.encode(), headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 207, response.text
    root = ElementTree.fromstring(response.content)
    changed, removed = [], []
    for item in root.findall(f"{{{DAV}}}response"):
        href = item.findtext(f"{{{DAV}}}href", "")
        status = item.findtext(f"{{{DAV}}}status", "")
        (removed if "404" in status else changed).append(href)
    return root.findtext(f"{{{DAV}}}sync-token", ""), changed, removed


VCARD_WITH_EXTRAS = "\r\n".join(
    [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:dav-card-1",
        "FN:Jeanne Martin",
        "N:Martin;Jeanne;;;",
        "EMAIL;TYPE=INTERNET,WORK:jeanne@example.org",
        "TEL;TYPE=CELL:+33 6 12 34 56 78",
        "X-SPOUSE;X-CUSTOM=yes:Paul",
        "URL:https://example.org/jeanne",
        "CATEGORIES:amis,travail",
        "item1.X-ABLabel:Assistant",
        "END:VCARD",
        "",
    ]
)


# -- session ------------------------------------------------------------------------------


def test_session_advertises_contacts_and_principals(node: JmapNode, client: JmapClient) -> None:
    session = client.http.get("/.well-known/jmap").json()
    assert session["capabilities"][CONTACTS] == {}
    assert session["capabilities"]["urn:ietf:params:jmap:principals"] == {}
    account = session["accounts"][client.account_id]["accountCapabilities"]
    assert account[CONTACTS] == {"maxAddressBooksPerCard": 1, "mayCreateAddressBook": True}
    principals = account["urn:ietf:params:jmap:principals"]
    assert principals == {"currentUserPrincipalId": f"P{client.account.id}"}
    assert session["primaryAccounts"][CONTACTS] == client.account_id


def test_methods_need_the_capability_in_using(client: JmapClient) -> None:
    answer = client.request([["AddressBook/get", {"accountId": client.account_id}, "c0"]])
    assert answer["methodResponses"][0][0] == "error"
    assert answer["methodResponses"][0][1]["type"] == "unknownMethod"


# -- AddressBook ----------------------------------------------------------------------------


def test_addressbook_get_default(client: JmapClient) -> None:
    got = call(client, "AddressBook/get", {"ids": None})
    (book,) = got["list"]
    assert book["name"] == "Contacts" and book["isDefault"] is True
    assert book["isSubscribed"] is True and book["shareWith"] is None
    assert book["myRights"] == {
        "mayRead": True,
        "mayWrite": True,
        "mayShare": False,
        "mayDelete": False,
    }
    assert got["state"].isdigit()
    only = call(client, "AddressBook/get", {"ids": [book["id"], "B999999"], "properties": ["name"]})
    assert only["list"] == [{"id": book["id"], "name": "Contacts"}]
    assert only["notFound"] == ["B999999"]
    error(client, "AddressBook/get", {"properties": ["colour"]}, "invalidArguments")


def test_addressbook_create_update_destroy(client: JmapClient) -> None:
    state = call(client, "AddressBook/get", {"ids": []})["state"]
    made = call(
        client,
        "AddressBook/set",
        {"create": {"b": {"name": "Clients", "description": "Les clients", "sortOrder": 3}}},
    )
    book = made["created"]["b"]["id"]
    assert made["created"]["b"]["isDefault"] is False
    assert made["created"]["b"]["myRights"]["mayDelete"] is True
    got = call(client, "AddressBook/get", {"ids": [book]})["list"][0]
    assert (got["name"], got["description"], got["sortOrder"]) == ("Clients", "Les clients", 3)
    changed = call(client, "AddressBook/changes", {"sinceState": state})
    assert changed["created"] == [book] and changed["updated"] == [] and not changed["destroyed"]
    state = changed["newState"]
    updated = call(
        client,
        "AddressBook/set",
        {"update": {book: {"name": "Fournisseurs", "isSubscribed": False, "description": None}}},
    )
    assert updated["updated"] == {book: None}
    got = call(client, "AddressBook/get", {"ids": [book]})["list"][0]
    assert (got["name"], got["isSubscribed"], got["description"]) == (
        "Fournisseurs",
        False,
        None,
    )
    assert call(client, "AddressBook/changes", {"sinceState": state})["updated"] == [book]
    destroyed = call(client, "AddressBook/set", {"destroy": [book]})
    assert destroyed["destroyed"] == [book]
    assert call(client, "AddressBook/get", {"ids": [book]})["notFound"] == [book]


def test_addressbook_set_refusals(client: JmapClient) -> None:
    default = default_book(client)
    result = call(
        client,
        "AddressBook/set",
        {
            "create": {
                "empty": {"name": ""},
                "long": {"name": "x" * 256},
                "noname": {"description": "x"},
                "server": {"name": "A", "isDefault": True},
                "shared": {"name": "A", "shareWith": {"P1": {"mayRead": True}}},
                "unknown": {"name": "A", "colour": "red"},
            },
            "update": {default: {"myRights": {}}, "B999999": {"name": "x"}},
            "destroy": [default, "B999998"],
        },
    )
    not_created = result["notCreated"]
    assert {k: v["type"] for k, v in not_created.items()} == dict.fromkeys(
        ["empty", "long", "noname", "server", "shared", "unknown"], "invalidProperties"
    )
    assert not_created["empty"]["properties"] == ["name"]
    assert not_created["unknown"]["properties"] == ["colour"]
    # Updated and destroyed in one call: not updated (RFC 8620 §5.3).
    assert result["notUpdated"][default]["type"] == "willDestroy"
    assert result["notUpdated"]["B999999"]["type"] == "notFound"
    server_set = call(client, "AddressBook/set", {"update": {default: {"myRights": {}}}})
    assert server_set["notUpdated"][default]["type"] == "invalidProperties"
    same = call(client, "AddressBook/set", {"update": {default: {"isDefault": True}}})
    assert same["updated"] == {default: None}
    assert result["notDestroyed"][default]["type"] == "forbidden"
    assert result["notDestroyed"]["B999998"]["type"] == "notFound"
    error(client, "AddressBook/set", {"onDestroyRemoveContents": "yes"}, "invalidArguments")
    books = call(client, "AddressBook/get", {"ids": None})["list"]
    error(
        client,
        "AddressBook/set",
        {"create": {"b": {"name": "B"}}, "onSuccessSetIsDefault": "#b"},
        "invalidArguments",
    )
    # Refused before anything was written.
    assert call(client, "AddressBook/get", {"ids": None})["list"] == books
    same = call(
        client,
        "AddressBook/set",
        {"update": {default: {"sortOrder": 1}}, "onSuccessSetIsDefault": default},
    )
    assert same["updated"] == {default: None}


def test_addressbook_destroy_with_contents(client: JmapClient) -> None:
    made = call(client, "AddressBook/set", {"create": {"b": {"name": "Temp"}}})
    book = made["created"]["b"]["id"]
    card = create_card(client, addressBookIds={book: True}, name={"full": "Temp Card"})
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    refused = call(client, "AddressBook/set", {"destroy": [book]})
    assert refused["notDestroyed"][book]["type"] == "addressBookHasContents"
    assert call(client, "ContactCard/get", {"ids": [card]})["list"]
    done = call(client, "AddressBook/set", {"destroy": [book], "onDestroyRemoveContents": True})
    assert done["destroyed"] == [book]
    assert call(client, "ContactCard/get", {"ids": [card]})["notFound"] == [card]
    assert call(client, "ContactCard/changes", {"sinceState": state})["destroyed"] == [card]


# -- ContactCard: get, set -------------------------------------------------------------------


def test_card_create_and_get(node: JmapNode, client: JmapClient) -> None:
    book = default_book(client)
    card = {
        "addressBookIds": {book: True},
        "@type": "Card",
        "kind": "individual",
        "name": {
            "full": "Jean Dupont",
            "components": [
                {"kind": "given", "value": "Jean"},
                {"kind": "surname", "value": "Dupont"},
            ],
        },
        "nicknames": {"n1": {"name": "Jeannot"}},
        "emails": {"e1": {"address": "jean@example.fr", "contexts": {"work": True}, "pref": 1}},
        "phones": {"p1": {"number": "+33 1 23 45 67 89", "features": {"voice": True}}},
        "addresses": {
            "a1": {
                "components": [
                    {"kind": "name", "value": "1 rue de la Paix"},
                    {"kind": "locality", "value": "Paris"},
                    {"kind": "postcode", "value": "75002"},
                    {"kind": "country", "value": "France"},
                ],
                "contexts": {"private": True},
            }
        },
        "organizations": {"o1": {"name": "ACME", "units": [{"name": "Ventes"}]}},
        "titles": {"t1": {"name": "Directeur", "kind": "title"}},
        "notes": {"n1": {"note": "Rencontré à Lyon;\nà rappeler, vite"}},
        "onlineServices": {"s1": {"uri": "xmpp:jean@example.fr", "service": "Jabber"}},
        "anniversaries": {
            "d1": {"kind": "birth", "date": {"@type": "PartialDate", "month": 4, "day": 12}}
        },
    }
    result = call(client, "ContactCard/set", {"create": {"k": card}})
    created = result["created"]["k"]
    card_id = created["id"]
    assert created["uid"].startswith("urn:uuid:")
    assert created["created"] and created["updated"]
    got = call(client, "ContactCard/get", {"ids": [card_id]})["list"][0]
    for key, value in card.items():
        if key != "@type":
            assert got[key] == value, key
    assert got["@type"] == "Card" and got["uid"] == created["uid"]
    # The same card over CardDAV, as a vCard that the CardDAV rules accepted.
    with dav(node) as http:
        _token, changed, _removed = sync(http, f"/dav/{ADDRESS}/Contacts/")
        assert len(changed) == 1
        text = http.get(changed[0]).text
    assert "EMAIL;TYPE=work;PREF=1;PROP-ID=e1:jean@example.fr" in text
    assert "FN:Jean Dupont" in text and "N:Dupont;Jean;;;" in text
    assert "NOTE;PROP-ID=n1:Rencontré à Lyon\\;\\nà rappeler\\, vite" in text


def test_card_update_keeps_what_is_not_mapped(node: JmapNode, client: JmapClient) -> None:
    with dav(node) as http:
        put = http.put(
            f"/dav/{ADDRESS}/Contacts/jeanne.vcf",
            content=VCARD_WITH_EXTRAS.encode(),
            headers={"Content-Type": "text/vcard"},
        )
        assert put.status_code == 201, put.text
    (card,) = call(client, "ContactCard/query", {"filter": {"uid": "dav-card-1"}})["ids"]
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert got["emails"] == {"e1": {"address": "jeanne@example.org", "contexts": {"work": True}}}
    result = call(
        client,
        "ContactCard/set",
        {
            "update": {
                card: {"emails/e1/address": "jeanne@example.net", "titles": {"t": {"name": "CEO"}}}
            }
        },
    )
    assert card in result["updated"] and result["updated"][card]["updated"]
    with dav(node) as http:
        text = http.get(f"/dav/{ADDRESS}/Contacts/jeanne.vcf").text
    for kept in (
        "X-SPOUSE;X-CUSTOM=yes:Paul",
        "URL;PROP-ID=l1:https://example.org/jeanne",
        "CATEGORIES:amis,travail",
        "item1.X-ABLabel:Assistant",
        "FN:Jeanne Martin",
        "N:Martin;Jeanne;;;",
        "VERSION:3.0",
    ):
        assert kept in text, (kept, text)
    assert "jeanne@example.net" in text and "jeanne@example.org" not in text
    assert "TITLE;PROP-ID=t:CEO" in text
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert got["emails"]["e1"]["address"] == "jeanne@example.net"
    assert got["phones"]["p1"] == {"number": "+33 6 12 34 56 78", "features": {"mobile": True}}
    assert got["titles"] == {"t": {"name": "CEO", "kind": "title"}}
    assert got["links"] == {"l1": {"uri": "https://example.org/jeanne"}}
    assert got["keywords"] == {"amis": True, "travail": True}


def test_card_set_refusals(client: JmapClient) -> None:
    book = default_book(client)
    first = create_card(client, uid="same-uid", name={"full": "A"})
    result = call(
        client,
        "ContactCard/set",
        {
            "create": {
                "dup": {"addressBookIds": {book: True}, "uid": "same-uid"},
                "nobook": {"name": {"full": "B"}},
                "twobooks": {"addressBookIds": {book: True, "B999999": True}},
                "badbook": {"addressBookIds": {"B999999": True}},
                "photos": {"addressBookIds": {book: True}, "photos": {"p": {"uri": "x:y"}}},
                "bademail": {"addressBookIds": {book: True}, "emails": {"e": {"address": ""}}},
                "badcontext": {
                    "addressBookIds": {book: True},
                    "emails": {"e": {"address": "a@b", "contexts": {"billing": True}}},
                },
                "baddate": {
                    "addressBookIds": {book: True},
                    "anniversaries": {"d": {"kind": "birth", "date": {"month": 2, "day": 30}}},
                },
                "id": {"addressBookIds": {book: True}, "id": "C1"},
            },
            "update": {
                first: {"uid": "other"},
                "C999999": {"name/full": "x"},
            },
            "destroy": ["C999998"],
        },
    )
    refused = result["notCreated"]
    assert refused["dup"]["type"] == "alreadyExists" and refused["dup"]["existingId"] == first
    for key, path in (
        ("nobook", "addressBookIds"),
        ("twobooks", "addressBookIds"),
        ("badbook", "addressBookIds"),
        ("photos", "photos"),
        ("bademail", "emails/e/address"),
        ("badcontext", "emails/e/contexts"),
        ("baddate", "anniversaries/d/date"),
        ("id", "id"),
    ):
        assert refused[key]["type"] == "invalidProperties", (key, refused[key])
        assert refused[key]["properties"] == [path], (key, refused[key])
    assert result["notUpdated"][first]["type"] == "invalidProperties"
    assert result["notUpdated"][first]["properties"] == ["uid"]
    assert result["notUpdated"]["C999999"]["type"] == "notFound"
    assert result["notDestroyed"]["C999998"]["type"] == "notFound"
    bad_patch = call(client, "ContactCard/set", {"update": {first: {"emails/e1/address": "x"}}})
    assert bad_patch["notUpdated"][first]["type"] == "invalidPatch"


def test_card_destroy(client: JmapClient) -> None:
    card = create_card(client, name={"full": "Bye"})
    result = call(client, "ContactCard/set", {"destroy": [card]})
    assert result["destroyed"] == [card]
    assert call(client, "ContactCard/get", {"ids": [card]})["notFound"] == [card]


def test_card_moves_between_books_keeping_its_id(node: JmapNode, client: JmapClient) -> None:
    default = default_book(client)
    other = call(client, "AddressBook/set", {"create": {"b": {"name": "Other"}}})["created"]["b"]
    card = create_card(client, name={"full": "Mover"})
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    with dav(node) as http:
        token_a, _, _ = sync(http, f"/dav/{ADDRESS}/Contacts/")
        token_b, _, _ = sync(http, book_path(client, other["id"], node))
    moved = call(
        client, "ContactCard/set", {"update": {card: {"addressBookIds": {other["id"]: True}}}}
    )
    assert card in moved["updated"]
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert got["addressBookIds"] == {other["id"]: True}
    changed = call(client, "ContactCard/changes", {"sinceState": state})
    assert changed["updated"] == [card] and not changed["created"] and not changed["destroyed"]
    # The same move back, written as a patch of the set.
    back = call(
        client,
        "ContactCard/set",
        {
            "update": {
                card: {f"addressBookIds/{default}": True, f"addressBookIds/{other['id']}": None}
            }
        },
    )
    assert card in back["updated"]
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert got["addressBookIds"] == {default: True}
    moved = call(
        client, "ContactCard/set", {"update": {card: {"addressBookIds": {other["id"]: True}}}}
    )
    assert card in moved["updated"]
    inside = call(client, "ContactCard/query", {"filter": {"inAddressBook": default}})["ids"]
    assert card not in inside
    with dav(node) as http:
        _, changed_a, removed_a = sync(http, f"/dav/{ADDRESS}/Contacts/", token_a)
        _, changed_b, removed_b = sync(http, book_path(client, other["id"], node), token_b)
    assert len(removed_a) == 1 and not changed_a
    assert len(changed_b) == 1 and not removed_b


def test_if_in_state(client: JmapClient) -> None:
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    create_card(client, name={"full": "First"})
    error(
        client,
        "ContactCard/set",
        {"ifInState": state, "create": {"k": {"addressBookIds": {default_book(client): True}}}},
        "stateMismatch",
    )
    current = call(client, "ContactCard/get", {"ids": []})["state"]
    ok = call(
        client,
        "ContactCard/set",
        {
            "ifInState": current,
            "create": {"k": {"addressBookIds": {default_book(client): True}, "kind": "org"}},
        },
    )
    assert ok["oldState"] == current and ok["newState"] != current
    error(client, "AddressBook/set", {"ifInState": current, "create": {}}, "stateMismatch")


# -- both ways with CardDAV -------------------------------------------------------------------


def test_carddav_put_and_delete_seen_by_changes(node: JmapNode, client: JmapClient) -> None:
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    with dav(node) as http:
        put = http.put(
            f"/dav/{ADDRESS}/Contacts/jeanne.vcf",
            content=VCARD_WITH_EXTRAS.encode(),
            headers={"Content-Type": "text/vcard"},
        )
        assert put.status_code == 201
    changed = call(client, "ContactCard/changes", {"sinceState": state})
    (card,) = changed["created"]
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert got["name"]["full"] == "Jeanne Martin" and got["uid"] == "dav-card-1"
    state = changed["newState"]
    with dav(node) as http:
        assert http.delete(f"/dav/{ADDRESS}/Contacts/jeanne.vcf").status_code == 204
    changed = call(client, "ContactCard/changes", {"sinceState": state})
    assert changed["destroyed"] == [card] and not changed["created"]


def test_jmap_changes_seen_by_sync_collection(node: JmapNode, client: JmapClient) -> None:
    with dav(node) as http:
        token, changed, _ = sync(http, f"/dav/{ADDRESS}/Contacts/")
        assert changed == []
        card = create_card(client, name={"full": "Nouveau"}, emails={"e": {"address": "n@x.fr"}})
        token, changed, removed = sync(http, f"/dav/{ADDRESS}/Contacts/", token)
        assert len(changed) == 1 and not removed
        href = changed[0]
        call(client, "ContactCard/set", {"update": {card: {"name/full": "Renommé"}}})
        token, changed, removed = sync(http, f"/dav/{ADDRESS}/Contacts/", token)
        assert changed == [href] and "FN:Renommé" in http.get(href).text
        call(client, "ContactCard/set", {"destroy": [card]})
        token, changed, removed = sync(http, f"/dav/{ADDRESS}/Contacts/", token)
        assert removed == [href] and not changed


def test_carddav_put_reaches_event_source(node: JmapNode, client: JmapClient) -> None:
    from tests.jmap.test_push import events

    default_book(client)  # the default address book exists before the stream starts
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    with events(client, "types=ContactCard,AddressBook&closeafter=no&ping=1") as stream:
        with dav(node) as http:
            put = http.put(
                f"/dav/{ADDRESS}/Contacts/jeanne.vcf",
                content=VCARD_WITH_EXTRAS.encode(),
                headers={"Content-Type": "text/vcard"},
            )
            assert put.status_code == 201
        event = stream.next(timeout=5.0)
        assert event is not None and event[0] == "state"
        changed = event[1]["changed"][client.account_id]
        assert list(changed) == ["ContactCard"] and int(changed["ContactCard"]) > int(state)
    assert len(call(client, "ContactCard/changes", {"sinceState": state})["created"]) == 1


# -- /changes -----------------------------------------------------------------------------------


def test_offline_client_pages_changes(client: JmapClient) -> None:
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    made = [create_card(client, name={"full": f"Card {i}"}) for i in range(5)]
    call(client, "ContactCard/set", {"update": {made[0]: {"name/full": "Card zero"}}})
    call(client, "ContactCard/set", {"destroy": [made[1]]})
    seen_created: list[str] = []
    seen_destroyed: list[str] = []
    pages = 0
    while True:
        page = call(client, "ContactCard/changes", {"sinceState": state, "maxChanges": 2})
        pages += 1
        assert len(page["created"]) + len(page["updated"]) + len(page["destroyed"]) <= 2
        seen_created += page["created"] + page["updated"]
        seen_destroyed += page["destroyed"]
        state = page["newState"]
        if not page["hasMoreChanges"]:
            break
    assert pages >= 2
    assert set(seen_created) - set(seen_destroyed) == {made[0], *made[2:]}
    assert made[1] not in set(seen_created) - set(seen_destroyed)
    again = call(client, "ContactCard/changes", {"sinceState": state})
    assert again["created"] == again["updated"] == again["destroyed"] == []
    assert again["hasMoreChanges"] is False


def test_changes_errors(node: JmapNode, client: JmapClient) -> None:
    error(client, "ContactCard/changes", {"sinceState": "x1"}, "cannotCalculateChanges")
    error(client, "ContactCard/changes", {}, "invalidArguments")
    error(client, "AddressBook/changes", {"sinceState": "1", "maxChanges": 0}, "invalidArguments")
    state = call(client, "ContactCard/get", {"ids": []})["state"]
    create_card(client, name={"full": "X"})
    account_id = client.account.id

    def compact(ctx: Any) -> int:
        return journal.compact(ctx, account_id, up_to_modseq=int(state) + 1)

    node.run(node.services.database.write(compact))
    error(client, "ContactCard/changes", {"sinceState": state}, "cannotCalculateChanges")


# -- query ----------------------------------------------------------------------------------------


@pytest.fixture
def people(client: JmapClient) -> dict[str, str]:
    other = call(client, "AddressBook/set", {"create": {"b": {"name": "Travail"}}})
    work = other["created"]["b"]["id"]
    made = {
        "ana": create_card(
            client,
            uid="uid-ana",
            name={
                "components": [
                    {"kind": "given", "value": "Ana"},
                    {"kind": "surname", "value": "Zola"},
                ]
            },
            emails={"e": {"address": "ana@example.fr"}},
            keywords={"VIP": True},
            created="2020-01-01T00:00:00Z",
        ),
        "bob": create_card(
            client,
            addressBookIds={work: True},
            name={
                "components": [
                    {"kind": "given", "value": "Bob"},
                    {"kind": "surname", "value": "Martin"},
                ]
            },
            phones={"p": {"number": "+33 612"}},
            organizations={"o": {"name": "Hirondelle SA"}},
            created="2021-01-01T00:00:00Z",
        ),
        "chloe": create_card(
            client,
            name={"full": "Chloé Durand", "components": [{"kind": "surname", "value": "Durand"}]},
            notes={"n": {"note": "cousine de Bob"}},
            kind="individual",
            created="2022-01-01T00:00:00Z",
        ),
        "acme": create_card(client, kind="org", organizations={"o": {"name": "ACME"}}),
        "team": create_card(
            client, kind="group", name={"full": "Équipe"}, members={"urn:uuid:x-1": True}
        ),
    }
    made["work"] = work
    return made


def query(client: JmapClient, **args: Any) -> list[str]:
    result: list[str] = call(client, "ContactCard/query", args)["ids"]
    return result


def test_query_filters(client: JmapClient, people: dict[str, str]) -> None:
    p = people
    assert query(client, filter={"inAddressBook": p["work"]}) == [p["bob"]]
    assert query(client, filter={"uid": "uid-ana"}) == [p["ana"]]
    assert query(client, filter={"email": "ANA@"}) == [p["ana"]]
    assert query(client, filter={"phone": "612"}) == [p["bob"]]
    assert query(client, filter={"name": "chlo"}) == [p["chloe"]]
    assert query(client, filter={"name/surname": "mart"}) == [p["bob"]]
    assert query(client, filter={"name/given": "ana"}) == [p["ana"]]
    assert query(client, filter={"organization": "hirondelle"}) == [p["bob"]]
    assert query(client, filter={"note": "cousine"}) == [p["chloe"]]
    assert sorted(query(client, filter={"text": "bob"})) == sorted([p["bob"], p["chloe"]])
    # text looks at what people wrote, not at kinds and contexts.
    assert query(client, filter={"text": "given"}) == []
    assert query(client, filter={"text": "individual"}) == []
    assert query(client, filter={"text": "hirondelle sa"}) == [p["bob"]]
    assert query(client, filter={"text": "vip"}) == [p["ana"]]
    assert query(client, filter={"kind": "org"}) == [p["acme"]]
    assert query(client, filter={"hasMember": "urn:uuid:x-1"}) == [p["team"]]
    assert query(client, filter={"createdBefore": "2021-01-01T00:00:00Z"}) == [p["ana"]]
    after = query(client, filter={"createdAfter": "2021-01-01T00:00:00Z"})
    assert p["bob"] in after and p["chloe"] in after and p["ana"] not in after
    either = query(
        client, filter={"operator": "OR", "conditions": [{"uid": "uid-ana"}, {"kind": "org"}]}
    )
    assert sorted(either) == sorted([p["ana"], p["acme"]])
    neither = query(
        client,
        filter={
            "operator": "NOT",
            "conditions": [{"kind": "org"}, {"inAddressBook": p["work"]}, {"kind": "group"}],
        },
    )
    assert sorted(neither) == sorted([p["ana"], p["chloe"]])
    error(client, "ContactCard/query", {"filter": {"colour": "x"}}, "unsupportedFilter")
    error(client, "ContactCard/query", {"filter": {"text": 3}}, "invalidArguments")
    error(
        client, "ContactCard/query", {"filter": {"createdAfter": "yesterday"}}, "invalidArguments"
    )


def test_query_sort_and_window(client: JmapClient, people: dict[str, str]) -> None:
    p = people
    by_surname = query(client, sort=[{"property": "name/surname"}], filter={"kind": "individual"})
    assert by_surname == [p["chloe"], p["bob"], p["ana"]]
    descending = query(
        client,
        sort=[{"property": "name/surname", "isAscending": False}],
        filter={"kind": "individual"},
    )
    assert descending == [p["ana"], p["bob"], p["chloe"]]
    by_created = query(client, sort=[{"property": "created"}], filter={"kind": "individual"})
    assert by_created == [p["ana"], p["bob"], p["chloe"]]
    page = call(
        client,
        "ContactCard/query",
        {"sort": [{"property": "name/surname"}], "position": 1, "limit": 2, "calculateTotal": True},
    )
    assert page["total"] == 5 and page["position"] == 1 and len(page["ids"]) == 2
    error(client, "ContactCard/query", {"sort": [{"property": "email"}]}, "unsupportedSort")


def test_query_changes(client: JmapClient, people: dict[str, str]) -> None:
    args = {"filter": {"kind": "individual"}, "sort": [{"property": "name/surname"}]}
    first = call(client, "ContactCard/query", args)
    new = create_card(
        client, name={"components": [{"kind": "surname", "value": "Bernard"}]}, kind="individual"
    )
    call(client, "ContactCard/set", {"update": {people["ana"]: {"kind": "org"}}})
    changed = call(
        client, "ContactCard/queryChanges", {**args, "sinceQueryState": first["queryState"]}
    )
    # Applying removed then added to the old list gives the new one.
    ids = [i for i in first["ids"] if i not in changed["removed"]]
    for added in changed["added"]:
        ids.insert(added["index"], added["id"])
    assert ids == call(client, "ContactCard/query", args)["ids"]
    assert new in ids and people["ana"] not in ids
    error(client, "ContactCard/queryChanges", {"sinceQueryState": "zz"}, "cannotCalculateChanges")


def test_update_accepts_odd_values_a_carddav_client_stored(
    node: JmapNode, client: JmapClient
) -> None:
    """Values these rules would refuse from JMAP (an IMPP that is no URI, a note with a
    tab, an unknown KIND, a REV that is no date) do not stop an update of another
    field, and stay as they were."""
    odd = "\r\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:4.0",
            "UID:odd-1",
            "FN:Odd",
            "IMPP:nocolon",
            "NOTE:tab\there",
            "KIND:robot",
            "REV:garbage",
            "EMAIL:",
            "END:VCARD",
            "",
        ]
    )
    with dav(node) as http:
        put = http.put(
            f"/dav/{ADDRESS}/Contacts/odd.vcf",
            content=odd.encode(),
            headers={"Content-Type": "text/vcard"},
        )
        assert put.status_code == 201, put.text
    (card,) = call(client, "ContactCard/query", {"filter": {"uid": "odd-1"}})["ids"]
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert "emails" not in got and got["onlineServices"] == {"s1": {"uri": "nocolon"}}
    result = call(client, "ContactCard/set", {"update": {card: {"name/full": "Odd Two"}}})
    assert card in result["updated"], result
    with dav(node) as http:
        text = http.get(f"/dav/{ADDRESS}/Contacts/odd.vcf").text
    assert "FN:Odd Two" in text and "NOTE;PROP-ID=n1:tab\there" in text
    assert "KIND:robot" in text and text.count("REV:") == 1


def test_copy_has_no_other_account_to_copy_from(client: JmapClient) -> None:
    error(
        client,
        "ContactCard/copy",
        {"fromAccountId": "A999999", "create": {}},
        "fromAccountNotFound",
    )
    error(
        client,
        "ContactCard/copy",
        {"fromAccountId": client.account_id, "create": {}},
        "invalidArguments",
    )


def test_concurrent_patches_of_one_card_lose_nothing(node: JmapNode, client: JmapClient) -> None:
    """Each /set converts its patch before the write; a card changed in between is
    patched again from what is stored then: two clients patching different fields at
    the same moment both keep their change."""
    import threading

    card = create_card(
        client,
        name={"full": "Race"},
        emails={"seed": {"address": "seed@x.fr"}},
        phones={"seed": {"number": "+33 0"}},
    )
    other = node.client()
    errors: list[BaseException] = []

    def patch(who: JmapClient, field: str, round_: int) -> None:
        try:
            key = f"{field}{round_}"
            value = {"address": f"{key}@x.fr"} if field == "e" else {"number": f"+33 {round_}"}
            prop = "emails" if field == "e" else "phones"
            result = call(who, "ContactCard/set", {"update": {card: {f"{prop}/{key}": value}}})
            assert card in result["updated"], result
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    for round_ in range(4):
        threads = [
            threading.Thread(target=patch, args=(client, "e", round_)),
            threading.Thread(target=patch, args=(other, "p", round_)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    got = call(client, "ContactCard/get", {"ids": [card]})["list"][0]
    assert sorted(got["emails"]) == [*(f"e{i}" for i in range(4)), "seed"]
    assert sorted(got["phones"]) == [*(f"p{i}" for i in range(4)), "seed"]
