// Publishes events to RabbitMQ the way Evolution API's RabbitmqController does (amqplib, the library it uses):
// the exchange asserted as a durable topic exchange (autoDelete false), the routing key = the event name, the body
// the JSON of { event, instance, data, server_url, date_time, sender, apikey }, no message properties (transient,
// no content type). In per-instance mode Evolution publishes to an exchange named after the instance.
//   node tests/interop/gateway/evolution-rabbitmq.mjs <amqp-uri> <exchange> '<items-json-array>'
// Each item is { event, instance, data, apikey?, sender? } (completed as Evolution does), { raw: "text", routingKey }
// to publish bytes as they are, or { event, instance, apikey?, repeat: N } for N events whose data is { seq: 0…N-1 }.
// Prints {"type":"published","count":N} and exits 0.
import amqp from "amqplib";

const [uri, exchange, itemsJson] = process.argv.slice(2);
if (!uri || !exchange || !itemsJson) {
  console.error("usage: node evolution-rabbitmq.mjs <amqp-uri> <exchange> <items-json-array>");
  process.exit(2);
}
const items = JSON.parse(itemsJson).flatMap((item) =>
  item.repeat === undefined ? [item] : Array.from({ length: item.repeat }, (_, seq) => ({ ...item, data: { seq } })));
const connection = await amqp.connect(uri);
// A confirm channel, so that the script exits only once the broker holds every message: closing a plain channel
// right after its publishes lost the last ones now and then under load (quorum queues; seen in CI). Evolution API's
// long-lived process needs no such wait, and confirms change nothing the consumer sees.
const channel = await connection.createConfirmChannel();
await channel.assertExchange(exchange, "topic", { durable: true, autoDelete: false });
for (const item of items) {
  if (item.raw !== undefined) {
    channel.publish(exchange, item.routingKey, Buffer.from(item.raw));
    continue;
  }
  const message = {
    event: item.event,
    instance: item.instance,
    data: item.data,
    server_url: "http://evolution.local:8080",
    date_time: new Date().toISOString(),
    sender: item.sender ?? "5511999999999@s.whatsapp.net",
    apikey: item.apikey ?? null,
  };
  channel.publish(exchange, item.event, Buffer.from(JSON.stringify(message)));
}
await channel.waitForConfirms();
await channel.close();
await connection.close();
process.stdout.write(JSON.stringify({ type: "published", count: items.length }) + "\n");
