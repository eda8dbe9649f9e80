"""The mail catcher (servers/mail): mail sent with Python's smtplib and aiosmtplib, read back through Mailpit's API
from Python and with Mailpit's own TypeScript client (mailpit-api); its events websocket; the journal and traces;
and the refusals: a message over the size limit, a huge header line, 10,000 recipients, senders holding connections,
wrong credentials, a page of another site, HTML with a script."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import socket
import subprocess
from email.message import EmailMessage
from pathlib import Path

import httpx2
import pytest

from conftest import node_packages
from mockpanel.testing import Mocks, settings_for

NODE_CLIENTS = Path(__file__).resolve().parent / "node_clients"


def smtp_port(running) -> int:
    return running.hub["mail"].smtp_port


@pytest.fixture
def mail():
    with Mocks(settings_for(["mail"], {"mail": {"smtp_port": "0"}})) as running:
        yield running


def welcome(to: str = "ada@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <noreply@shop.example>"
    message["To"] = f"Ada Lovelace <{to}>"
    message["Subject"] = "Welcome"
    message["Message-ID"] = "<welcome-1@shop.example>"
    message.set_content("Hello Ada,\nverify your address: http://localhost:3000/verify?token=abc123def\n")
    message.add_alternative('<p>Hello Ada, <a href="http://localhost:3000/verify?token=abc123def">verify</a></p>', subtype="html")
    message.add_attachment(b"id,total\n1,42\n", maintype="text", subtype="csv", filename="receipt.csv")
    return message


def test_smtplib_mail_is_read_back_through_mailpits_api(mail):
    api = mail.urls["mail"]
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        assert client.ehlo()[0] == 250
        assert client.has_extn("size") and client.has_extn("8bitmime") and client.has_extn("smtputf8") and client.has_extn("auth")
        client.send_message(welcome())
        client.sendmail("robot@example.com", ["grace@example.com"], b"Subject: plain\r\n\r\njust text\r\n")
    listed = httpx2.get(f"{api}/api/v1/messages").json()
    assert listed["total"] == 2 and listed["unread"] == 2 and [m["Subject"] for m in listed["messages"]] == ["plain", "Welcome"]
    first = listed["messages"][1]
    assert first["From"] == {"Name": "Shop", "Address": "noreply@shop.example"}
    assert first["To"] == [{"Name": "Ada Lovelace", "Address": "ada@example.com"}] and first["Attachments"] == 1
    assert first["Snippet"].startswith("Hello Ada, verify your address") and first["MessageID"] == "welcome-1@shop.example"
    full = httpx2.get(f"{api}/api/v1/message/{first['ID']}").json()
    assert "token=abc123def" in full["Text"] and "<a href" in full["HTML"]
    assert full["Attachments"][0]["FileName"] == "receipt.csv" and full["Attachments"][0]["ContentType"] == "text/csv"
    part = httpx2.get(f"{api}/api/v1/message/{first['ID']}/part/{full['Attachments'][0]['PartID']}")
    assert part.content == b"id,total\n1,42\n" and part.headers["content-type"].startswith("text/csv")
    assert httpx2.get(f"{api}/api/v1/messages").json()["unread"] == 1  # reading it marked it read
    assert httpx2.get(f"{api}/api/v1/message/latest").json()["Subject"] == "plain"
    assert httpx2.get(f"{api}/api/v1/message/{first['ID']}/headers").json()["Subject"] == ["Welcome"]
    assert b"Subject: Welcome" in httpx2.get(f"{api}/api/v1/message/{first['ID']}/raw").content
    assert httpx2.get(f"{api}/api/v1/search", params={"query": "from:shop.example has:attachment"}).json()["messages_count"] == 1
    assert httpx2.get(f"{api}/api/v1/search", params={"query": "-subject:Welcome"}).json()["messages"][0]["Subject"] == "plain"
    assert httpx2.get(f"{api}/api/v1/search", params={"query": '"verify your address"'}).json()["messages_count"] == 1
    assert httpx2.get(f"{api}/api/v1/message/nope").status_code == 404


def test_utf8_mail_and_aiosmtplib_with_any_credentials(mail):
    import aiosmtplib

    message = EmailMessage()
    message["From"] = "Zoë <zoë@exämple.com>"
    message["To"] = "José <josé@exämple.com>"
    message["Subject"] = "Grüße — 你好 ✉"
    message.set_content("Ça va? Ünïcödé body ✓")

    async def send() -> None:
        await aiosmtplib.send(message, hostname="127.0.0.1", port=smtp_port(mail), username="anyone", password="anything",
                              start_tls=False, use_tls=False)

    asyncio.run(send())
    found = httpx2.get(f"{mail.urls['mail']}/api/v1/message/latest").json()
    assert found["Subject"] == "Grüße — 你好 ✉" and found["Text"].strip() == "Ça va? Ünïcödé body ✓"
    assert found["From"]["Address"] == "zoë@exämple.com"


def test_configured_accounts_refuse_wrong_credentials():
    with Mocks(settings_for(["mail"], {"mail": {"smtp_port": "0", "smtp_accounts": "app:s3cret"}})) as running:
        with smtplib.SMTP("127.0.0.1", smtp_port(running)) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                client.login("app", "wrong")
            assert refused.value.smtp_code == 535
            assert client.login("app", "s3cret")[0] == 235


def test_mailpits_own_client_reads_searches_tags_and_deletes(mail):
    node_packages(NODE_CLIENTS, "mailpit-api", "mailpit-api")
    run = subprocess.Popen(["node", "mailpit.mjs"], cwd=NODE_CLIENTS, env={**os.environ, "MAILPIT_URL": mail.urls["mail"]},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:  # sent while the client waits for it
            client.sendmail("robot@example.com", ["other@example.com"], b"Subject: other\r\n\r\nnot for ada\r\n")
            client.send_message(welcome())
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, err[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["waited"] == {"subject": "Welcome", "to": ["ada@example.com"], "attachments": 1}
    assert seen["list"] == {"total": 2, "unread": 1, "subjects": ["Welcome", "other"]}  # waitForMessage read Welcome
    assert seen["search"] == [] and seen["tagged"] == ["Welcome"] and seen["tags"] == ["signup"]
    assert seen["attachment"] == {"name": "receipt.csv", "type": "text/csv", "text": "id,total\n1,42\n"}
    assert seen["source"] is True and seen["headers"] == ["Welcome"] and "token=abc123def" in seen["text"]
    assert seen["chaos"] == {"ErrorCode": 451, "Probability": 100}
    assert seen["afterDelete"] == 1 and seen["afterDeleteAll"] == 0


def test_chaos_answers_smtp_errors(mail):
    httpx2.put(f"{mail.urls['mail']}/api/v1/chaos", json={"Recipient": {"ErrorCode": 452, "Probability": 100}}).raise_for_status()
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\ny\r\n")
    assert refused.value.recipients["b@example.com"][0] == 452
    httpx2.put(f"{mail.urls['mail']}/api/v1/chaos", json={}).raise_for_status()
    bad = httpx2.put(f"{mail.urls['mail']}/api/v1/chaos", json={"Recipient": {"ErrorCode": 200, "Probability": 100}})
    assert bad.status_code == 422 and "400 to 599" in bad.json()["detail"]


def test_the_events_websocket_announces_new_mail_and_refuses_other_sites(mail):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = mail.urls["mail"].replace("http://", "ws://") + "/api/events"
    with connect(url) as events:
        with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
            client.send_message(welcome())
        event = json.loads(events.recv(timeout=20))
    assert event["Type"] == "new" and event["Data"]["Subject"] == "Welcome"
    with pytest.raises(InvalidStatus):
        with connect(url, origin="http://evil.example"):
            pass
    with pytest.raises(InvalidStatus):  # DNS rebinding: a name that is not this machine's
        with connect(url, additional_headers={"Host": "attacker.example"}):
            pass


def test_each_message_is_journaled_and_joins_the_trace_that_sent_it(mail):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    message = welcome()
    message["traceparent"] = f"00-{trace}-00f067aa0ba902b7-01"
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        client.send_message(message)
    entries = mail.requests("mail")
    assert [(e.method, e.status, e.path) for e in entries if e.method == "SMTP"] == [
        ("SMTP", 250, "noreply@shop.example → ada@example.com")]
    hop = [e for e in entries if e.method == "SMTP"][0]
    assert hop.trace_id == trace and hop.parent_id == "00f067aa0ba902b7" and b"Subject: Welcome" in hop.request_preview


def test_a_message_over_the_size_limit_is_refused_and_not_stored():
    with Mocks(settings_for(["mail"], {"mail": {"smtp_port": "0", "max_message_mib": "1"}})) as running:
        with smtplib.SMTP("127.0.0.1", smtp_port(running)) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == str(1024 * 1024)
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # smtplib declares SIZE: refused at MAIL FROM
                client.sendmail("a@example.com", ["b@example.com"], b"Subject: big\r\n\r\n" + b"x" * (2 * 1024 * 1024))
            assert refused.value.smtp_code == 552
        # a sender that does not declare its size: refused after DATA, all the same
        with socket.create_connection(("127.0.0.1", smtp_port(running))) as raw, raw.makefile("rb") as reader:
            reader.readline()
            raw.sendall(b"HELO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            for _ in range(4):  # HELO, MAIL, RCPT, DATA (354)
                reader.readline()
            raw.sendall((b"x" * 998 + b"\r\n") * 1200 + b".\r\n")
            assert reader.readline().startswith(b"552")
        assert httpx2.get(f"{running.urls['mail']}/api/v1/info").json()["Messages"] == 0


def test_a_huge_header_line_and_ten_thousand_recipients_are_bounded(mail):
    with socket.create_connection(("127.0.0.1", smtp_port(mail))) as raw, raw.makefile("rb") as reader:
        reader.readline()
        raw.sendall(b"HELO x\r\nMAIL FROM:<a@example.com>\r\n")
        reader.readline(), reader.readline()
        raw.sendall(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i for i in range(10_000)))
        replies = [reader.readline()[:3] for _ in range(10_000)]
        assert replies.count(b"250") == 1000 and replies.count(b"452") == 9000
        raw.sendall(b"DATA\r\n")
        assert reader.readline().startswith(b"354")
        raw.sendall(b"Subject: " + b"x" * 100_000 + b"\r\n\r\nbody\r\n.\r\n")
        assert reader.readline().startswith(b"500")  # the line is too long (RFC 5321 4.5.3.1.6): nothing stored
    assert httpx2.get(f"{mail.urls['mail']}/api/v1/info").json()["Messages"] == 0


def test_senders_holding_connections_are_bounded_and_let_go():
    with Mocks(settings_for(["mail"], {"mail": {"smtp_port": "0", "max_smtp_connections": "3", "smtp_timeout_s": "1"}})) as running:
        port = smtp_port(running)
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        readers = [conn.makefile("rb") for conn in held]
        for reader in readers:
            assert reader.readline().startswith(b"220")
        with socket.create_connection(("127.0.0.1", port)) as extra, extra.makefile("rb") as told:
            assert told.readline().startswith(b"421")
        for conn, reader in zip(held, readers):  # silent past the timeout: closed by the catcher (read until it says so)
            conn.settimeout(30)
            while reader.readline():
                pass
            reader.close()
            conn.close()
        with smtplib.SMTP("127.0.0.1", port) as client:  # and a new sender is served again
            assert client.noop()[0] == 250


def test_the_store_is_bounded_oldest_first():
    with Mocks(settings_for(["mail"], {"mail": {"smtp_port": "0", "max_messages": "3"}})) as running:
        with smtplib.SMTP("127.0.0.1", smtp_port(running)) as client:
            for i in range(5):
                client.sendmail("a@example.com", ["b@example.com"], f"Subject: m{i}\r\n\r\nx\r\n".encode())
        listed = httpx2.get(f"{running.urls['mail']}/api/v1/messages").json()
        assert [m["Subject"] for m in listed["messages"]] == ["m4", "m3", "m2"]
        assert httpx2.get(f"{running.urls['mail']}/api/v1/info").json()["RuntimeStats"]["MessagesDeleted"] == 2


def test_a_messages_html_is_shown_sandboxed(mail):
    message = EmailMessage()
    message["Subject"] = "hostile"
    message.set_content("<p>hi</p><script>fetch('/api/v1/messages', {method: 'DELETE'})</script>", subtype="html")
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        client.sendmail("a@example.com", ["b@example.com"], message.as_bytes())
    shown = httpx2.get(f"{mail.urls['mail']}/view/latest.html")
    assert "<script>" in shown.text and "sandbox" in shown.headers["content-security-policy"]
    assert "script-src" not in shown.headers["content-security-policy"]  # default-src 'none': no script runs
    snippet = httpx2.get(f"{mail.urls['mail']}/api/v1/messages").json()["messages"][0]["Snippet"]
    assert snippet == "hi"  # the words, never the markup


def test_a_page_on_another_site_cannot_read_or_delete_the_mail(mail):
    from conftest import page_on_another_site

    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        client.send_message(welcome())
    with page_on_another_site() as page:
        outcome = page.evaluate("""async (base) => {
            let read = 'unread';
            try { read = (await (await fetch(base + '/api/v1/messages')).json()).total; } catch (e) { read = 'blocked'; }
            try { await fetch(base + '/api/v1/messages', {method: 'DELETE', body: '{}', headers: {'content-type': 'application/json'}}); }
            catch (e) { /* its preflight gets no CORS answer */ }
            return read;
        }""", mail.urls["mail"])
    assert outcome == "blocked"
    assert httpx2.get(f"{mail.urls['mail']}/api/v1/info").json()["Messages"] == 1


def test_the_control_apis_reset_empties_the_mailbox(mail):
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        client.send_message(welcome())
    httpx2.post(f"{mail.urls['mail']}/__mockpanel/reset").raise_for_status()
    assert httpx2.get(f"{mail.urls['mail']}/api/v1/messages").json()["total"] == 0


def test_the_pytest_plugin_waits_for_mail_and_finds_its_links(pytester):
    import re

    from conftest import documentation

    match = re.search(r"<!-- example: mail-pytest -->\n```python\n(.*?)```", documentation(), re.S)
    assert match, "docs/email.md lost its pytest example"
    pytester.makeini("[pytest]\nmockpanel_servers = mail\n")
    pytester.makeconftest('''
import pytest

@pytest.fixture(scope="session")
def mockpanel_settings():
    return {"mail": {"smtp_port": "0"}}
''')
    pytester.makepyfile(test_mail_example=match.group(1) + '''

def test_waiting_times_out_with_a_reason(mockpanel):
    import pytest
    with pytest.raises(TimeoutError, match="no message matching"):
        mockpanel.mail.wait_for(to="nobody@example.com", timeout=0.2)
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_snapshot_keeps_the_mail(mail, tmp_path):
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        client.send_message(welcome())
    httpx2.put(f"{mail.urls['mail']}/api/v1/tags", json={"IDs": [mail.mail.messages()[0]["ID"]], "Tags": ["kept"]}).raise_for_status()
    mail.save_state(tmp_path / "mail.tar")
    mail.reset()
    assert mail.mail.messages() == []
    mail.load_state(tmp_path / "mail.tar")
    found = httpx2.get(f"{mail.urls['mail']}/api/v1/search", params={"query": "tag:kept"}).json()["messages"]
    assert [m["Subject"] for m in found] == ["Welcome"] and found[0]["Attachments"] == 1


async def test_the_mail_pane_shows_words_links_and_codes_and_acts():
    import asyncio

    from conftest import until
    from mockpanel.app import create_app

    app = create_app(settings_for(["auth", "mail"], {"mail": {"smtp_port": "0"}}))
    async with app.run_test(size=(140, 40)) as pilot:
        port = app.hub["mail"].smtp_port
        message = EmailMessage()
        message["From"] = "Shop <noreply@shop.example>"
        message["To"] = "ada@example.com"
        message["Subject"] = "Your code \x1b[31mred\x1b[0m [bold]x[/bold]"
        message.set_content("<p>Your code is <b>482913</b>.</p><script>alert(1)</script>"
                            '<a href="http://localhost:3000/reset?token=zz9">reset</a>', subtype="html")

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", port) as client:
                client.send_message(message)

        await asyncio.to_thread(send)
        await pilot.press("M")
        table = app.screen.query_one("#mail-table")
        await until(pilot, lambda: table.row_count == 1)
        detail = str(app.screen.query_one("#mail-detail").render())
        assert "482913" in detail and "http://localhost:3000/reset?token=zz9" in detail
        assert "<script>" not in detail and "alert(1)" not in detail and "\x1b" not in detail  # words, not markup or escapes
        assert "[bold]x[/bold]" in detail  # shown as typed, not as markup
        await pilot.press("c")
        await until(pilot, lambda: app.clipboard == "http://localhost:3000/reset?token=zz9")
        await pilot.press("escape", "K", "ctrl+a", "ctrl+k", *"recipient 451 100", "enter")
        await until(pilot, lambda: any("Recipient 451 at 100%" in n.message for n in app._notifications))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await asyncio.to_thread(send)
        await pilot.press("x", "y")
        await until(pilot, lambda: table.row_count == 0)


async def test_without_the_mail_server_its_key_says_so():
    from conftest import until
    from mockpanel.app import create_app

    app = create_app(settings_for(["auth"]))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("M")
        await until(pilot, lambda: any("not running here" in n.message for n in app._notifications))


def test_faults_act_in_smtps_terms_and_leave_the_api_alone(mail):
    api = mail.urls["mail"]
    httpx2.patch(f"{api}/__mockpanel/faults", json={"error_rate": 1.0, "error_codes": [503]}).raise_for_status()
    with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(welcome())
    assert refused.value.smtp_code == 451 and b"injected fault" in refused.value.smtp_error
    assert httpx2.get(f"{api}/api/v1/messages").json()["total"] == 0  # not stored; and the API itself answers, faults or not
    hop = [e for e in mail.requests("mail") if e.method == "SMTP"][-1]
    assert hop.status == 451 and hop.fault.startswith("error_rate:503")
    httpx2.put(f"{api}/__mockpanel/faults", json={"fail_next": 1, "drop_rate": 0.0}).raise_for_status()
    with mail.faults("mail", fail_next=0, drop_rate=1.0):
        with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
            with pytest.raises(smtplib.SMTPServerDisconnected):
                client.send_message(welcome())
    httpx2.delete(f"{api}/__mockpanel/faults").raise_for_status()
    with mail.scenario('[[step]]\nserver = "mail"\nfaults = { fail_next = 1, fail_next_code = 503 }\n'):
        with smtplib.SMTP("127.0.0.1", smtp_port(mail)) as client:
            with pytest.raises(smtplib.SMTPDataError):
                client.send_message(welcome())
            client.send_message(welcome())  # the next one is caught
    assert httpx2.get(f"{api}/api/v1/messages").json()["total"] == 1


def test_starttls_with_a_certificate_made_at_start():
    import ssl

    with Mocks(settings_for(["mail"], {"mail": {"smtp_port": "0", "smtp_tls": "true"}})) as running:
        runner = running.hub["mail"]
        trusted = ssl.create_default_context(cafile=runner.tls_cert)  # the client trusts what the catcher presents
        with smtplib.SMTP("localhost", smtp_port(running)) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=trusted)
            client.login("anyone", "anything")
            client.send_message(welcome())
        assert httpx2.get(f"{running.urls['mail']}/api/v1/message/latest").json()["Subject"] == "Welcome"


async def test_an_attached_panel_shows_the_mail_of_serve():
    import asyncio

    from conftest import ServeProcess, until
    from mockpanel.app import attached_app

    with ServeProcess("--only", "mail", "--mail-port", "0", "--mail-smtp-port", "0", "--quiet") as proc:
        url = proc.urls(1)["mail"]
        smtp_line = proc.readline()
        assert smtp_line.startswith("mail: SMTP at smtp://127.0.0.1:")
        port = int(smtp_line.strip().rsplit(":", 1)[1])

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", port) as client:
                client.send_message(welcome())

        await asyncio.to_thread(send)
        app = attached_app(url)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("M")
            table = app.screen.query_one("#mail-table")
            await until(pilot, lambda: table.row_count == 1)
            await until(pilot, lambda: "token=abc123def" in str(app.screen.query_one("#mail-detail").render()))
            await pilot.press("x", "y")
            await until(pilot, lambda: table.row_count == 0)
        assert httpx2.get(f"{url}/api/v1/info").json()["Messages"] == 0
