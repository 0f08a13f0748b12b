//! The broker against the real RabbitMQ (MACHINE.md: 127.0.0.1:5672,
//! guest/guest; `MONEYFLOW_TEST_AMQP_URL` overrides). Every test declares
//! queues and an exchange of its own and deletes them at the end.

mod dead_letters;
mod helpers;
mod prefetch;
mod publish_consume;
mod reconnect;
mod topology;
