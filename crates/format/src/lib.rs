//! Record formats sluice can write to Kafka.

pub mod dts_avro;
