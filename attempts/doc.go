// Package attempts owns the record of delivery attempts: the delivery log (one record per POST
// made, stored in batches in the stream QUAYCAST_ATTEMPTS) and the receivers' replies to those
// POSTs, published for upstream systems (in the stream QUAYCAST_REPLIES).
//
// Both streams are created by Setup and kept --log-max-age. The records are written by the
// sender in package gateway and read through package service; nothing here takes part in
// delivery, so a full log drops records rather than holding a delivery up.
package attempts
