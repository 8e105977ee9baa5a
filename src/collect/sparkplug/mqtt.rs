//! One MQTT connection for the Sparkplug host, in MQTT 3.1.1 or MQTT 5
//! (rumqttc has a client for each): what the host needs of either, a will,
//! subscriptions, QoS 1 publishes and the incoming messages, behind one
//! type so [`super::host`] is written once.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS as V5QoS;
use rumqttc::{QoS, Transport, v5};

fn v5_qos(qos: QoS) -> V5QoS {
    match qos {
        QoS::AtMostOnce => V5QoS::AtMostOnce,
        QoS::AtLeastOnce => V5QoS::AtLeastOnce,
        QoS::ExactlyOnce => V5QoS::ExactlyOnce,
    }
}

/// The MQTT protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// What the host needs to know of an incoming packet.
pub enum Incoming {
    /// The broker accepted the (re)connection.
    Connected,
    Message {
        topic: String,
        payload: Bytes,
    },
    Other,
}

/// How the host connects.
pub struct Options {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub user: Option<(String, String)>,
    pub transport: Option<Transport>,
    /// The will: topic and payload, QoS 1, retained.
    pub will: (String, Vec<u8>),
}

/// A client and its event loop (boxed: the two differ much in size).
pub enum Connection {
    V311(rumqttc::AsyncClient, Box<rumqttc::EventLoop>),
    V5(v5::AsyncClient, Box<v5::EventLoop>),
}

/// Long enough that a collector held back by a full write queue (the
/// sink behind) for a few seconds keeps its session.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const MAX_PACKET: usize = 64 << 20;
const QUEUE: usize = 10_000;

impl Connection {
    pub fn new(version: Version, options: Options) -> Self {
        let (topic, payload) = options.will;
        match version {
            Version::V311 => {
                let mut o =
                    rumqttc::MqttOptions::new(options.client_id, options.host, options.port);
                o.set_keep_alive(KEEP_ALIVE)
                    .set_clean_session(true)
                    .set_max_packet_size(MAX_PACKET, 1 << 20)
                    .set_last_will(rumqttc::LastWill::new(
                        topic,
                        payload,
                        QoS::AtLeastOnce,
                        true,
                    ));
                if let Some((user, password)) = options.user {
                    o.set_credentials(user, password);
                }
                if let Some(transport) = options.transport {
                    o.set_transport(transport);
                }
                let (client, events) = rumqttc::AsyncClient::new(o, QUEUE);
                Self::V311(client, Box::new(events))
            }
            Version::V5 => {
                let mut o = v5::MqttOptions::new(options.client_id, options.host, options.port);
                o.set_keep_alive(KEEP_ALIVE)
                    .set_clean_start(true)
                    .set_max_packet_size(Some(MAX_PACKET as u32))
                    .set_last_will(v5::mqttbytes::v5::LastWill::new(
                        topic,
                        payload,
                        V5QoS::AtLeastOnce,
                        true,
                        None,
                    ));
                if let Some((user, password)) = options.user {
                    o.set_credentials(user, password);
                }
                if let Some(transport) = options.transport {
                    o.set_transport(transport);
                }
                let (client, events) = v5::AsyncClient::new(o, QUEUE);
                Self::V5(client, Box::new(events))
            }
        }
    }

    /// The next packet from the broker; an error is a lost (or refused)
    /// connection, which the next call retries.
    pub async fn poll(&mut self) -> Result<Incoming, String> {
        match self {
            Self::V311(_, events) => match events.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => Ok(Incoming::Connected),
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Ok(Incoming::Message {
                    topic: p.topic,
                    payload: p.payload,
                }),
                _ => Ok(Incoming::Other),
            },
            Self::V5(_, events) => match events.poll().await.map_err(|e| e.to_string())? {
                v5::Event::Incoming(v5::Incoming::ConnAck(_)) => Ok(Incoming::Connected),
                v5::Event::Incoming(v5::Incoming::Publish(p)) => Ok(Incoming::Message {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                }),
                _ => Ok(Incoming::Other),
            },
        }
    }

    /// The will of the next connection (its time changes with each).
    pub fn set_will(&mut self, topic: &str, payload: Vec<u8>) {
        match self {
            Self::V311(_, events) => {
                events.mqtt_options.set_last_will(rumqttc::LastWill::new(
                    topic,
                    payload,
                    QoS::AtLeastOnce,
                    true,
                ));
            }
            Self::V5(_, events) => {
                events
                    .options
                    .set_last_will(v5::mqttbytes::v5::LastWill::new(
                        topic,
                        payload,
                        V5QoS::AtLeastOnce,
                        true,
                        None,
                    ));
            }
        }
    }

    pub fn subscribe(&self, filter: String) -> Result<(), String> {
        match self {
            Self::V311(client, _) => client
                .try_subscribe(filter, QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Self::V5(client, _) => client
                .try_subscribe(filter, V5QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    pub fn publish(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Self::V311(client, _) => client
                .try_publish(topic, qos, retain, payload)
                .map_err(|e| e.to_string()),
            Self::V5(client, _) => client
                .try_publish(topic, v5_qos(qos), retain, payload)
                .map_err(|e| e.to_string()),
        }
    }
}
