// Mailpit's own TypeScript client (mailpit-api on npm) against mockpanel's mail server, as a Node test suite would
// use it: wait for a message, list and search, read it and its parts, tag it, mark it, delete it, and set chaos.
// Prints one JSON object of what it saw.
import { MailpitClient } from 'mailpit-api'

const mailpit = new MailpitClient(process.env.MAILPIT_URL)
const seen = {}
const welcome = await mailpit.waitForMessage({ query: 'subject:Welcome' }, { timeout: 20000, interval: 50 })
seen.waited = { subject: welcome.Subject, to: welcome.To.map((a) => a.Address), attachments: welcome.Attachments.length }
const list = await mailpit.listMessages()
seen.list = { total: list.total, unread: list.unread, subjects: list.messages.map((m) => m.Subject) }
const found = await mailpit.searchMessages({ query: 'to:ada@example.com is:unread' })
seen.search = found.messages.map((m) => m.Subject)
const attachment = welcome.Attachments[0]
const blob = await mailpit.getMessageAttachment(welcome.ID, attachment.PartID)
seen.attachment = { name: attachment.FileName, type: blob.type, text: await blob.text() }
seen.source = (await mailpit.getMessageSource(welcome.ID)).includes('Subject: Welcome')
seen.headers = (await mailpit.getMessageHeaders(welcome.ID)).Subject
await mailpit.setTags({ IDs: [welcome.ID], Tags: ['signup'] })
seen.tags = await mailpit.getTags()
seen.tagged = (await mailpit.searchMessages({ query: 'tag:signup' })).messages.map((m) => m.Subject)
await mailpit.setReadStatus({ IDs: [welcome.ID], Read: true })
seen.unreadAfter = (await mailpit.listMessages()).unread
seen.text = await mailpit.renderMessageText(welcome.ID)
await mailpit.setChaosTriggers({ Recipient: { ErrorCode: 451, Probability: 100 } })
seen.chaos = (await mailpit.getChaosTriggers()).Triggers.Recipient
await mailpit.setChaosTriggers()
await mailpit.deleteMessages({ IDs: [welcome.ID] })
seen.afterDelete = (await mailpit.listMessages()).total
await mailpit.deleteMessages()
seen.afterDeleteAll = (await mailpit.getInfo()).Messages
console.log(JSON.stringify(seen))
