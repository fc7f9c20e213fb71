// Command consumegroup is a member of an Event Horizon consumer group, with the generated Go
// client:
//
//	go run ./examples/consumegroup ADDRESS GROUP [SUBTREE]
//
// With SUBTREE, it creates GROUP over that subtree first (from the beginning of the feed; an
// existing group is fine). Then it joins GROUP with Consume, handles each delivery (here: prints
// it as one JSON line), acks what it handled in batches, and on SIGINT or SIGTERM stops cleanly:
// no new deliveries, the last acks sent, then {"stopped": true, "acked": n}. Run it twice and the
// two processes share the group's partitions (docs/consumer-groups.md).
//
// A stream has at most one unacked entry in the whole group, so a handler sees each stream in
// version order; acks are batched (every ackEvery, or at ackBatch entries) because each Ack is a
// call, and the stream's next entry waits for its predecessor's ack.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	eh "github.com/eventhorizon/eventhorizon/clients/go/eventhorizon/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	ackBatch = 50
	ackEvery = 50 * time.Millisecond
)

type handled struct {
	Stream        string   `json:"stream"`
	Version       int64    `json:"version"`
	Position      int64    `json:"position"`
	Partition     uint32   `json:"partition"`
	DeliveryCount uint32   `json:"delivery_count"`
	Types         []string `json:"types"`
}

func emit(value interface{}) {
	line, err := json.Marshal(value)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(line))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "consumegroup:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: consumegroup ADDRESS GROUP [SUBTREE]"))
	}
	address, group := os.Args[1], os.Args[2]
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	client := eh.NewEventHorizonClient(conn)
	if len(os.Args) > 3 {
		createGroup(client, group, os.Args[3])
	}

	// Cancelling the call is how a member leaves: its partitions are freed at once, and the
	// entries it holds stay its own until acked (below) or until their ack wait ends.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	call, err := client.Consume(ctx, &eh.ConsumeRequest{Group: group, MemberName: "go-example"})
	if err != nil {
		fail(err)
	}

	handledPositions := make(chan int64, ackBatch)
	ackerDone := make(chan uint32)
	memberID := make(chan string, 1)
	go acker(client, group, memberID, handledPositions, ackerDone)

	for {
		message, err := call.Recv()
		if err != nil {
			if ctx.Err() != nil && status.Code(err) == codes.Canceled {
				break // stopped by a signal
			}
			fail(err)
		}
		switch m := message.GetMessage().(type) {
		case *eh.ConsumeResponse_Joined:
			memberID <- m.Joined.GetMemberId()
			emit(map[string]interface{}{"joined": m.Joined.GetMemberId()})
		case *eh.ConsumeResponse_Assignment:
			emit(map[string]interface{}{"assignment": m.Assignment.GetPartitions()})
		case *eh.ConsumeResponse_Delivery:
			entry := m.Delivery.GetEntry()
			// The handler: a real one would update a read model, idempotently (the group delivers
			// at least once), keyed by stream and version.
			out := handled{
				Stream: entry.GetStream(), Version: entry.GetVersion(), Position: entry.GetPosition(),
				Partition: m.Delivery.GetPartition(), DeliveryCount: m.Delivery.GetDeliveryCount(), Types: []string{},
			}
			for _, event := range entry.GetEvents() {
				out.Types = append(out.Types, event.GetType())
			}
			emit(map[string]interface{}{"entry": out})
			handledPositions <- entry.GetPosition()
		}
	}
	close(handledPositions)
	select { // stopped before joining: the acker has nothing to ack, let it end
	case memberID <- "":
	default:
	}
	emit(map[string]interface{}{"stopped": true, "acked": <-ackerDone})
}

func createGroup(client eh.EventHorizonClient, group, subtree string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.CreateConsumerGroup(ctx, &eh.CreateConsumerGroupRequest{
		Name: group, Selector: &eh.FeedSelector{Stream: subtree},
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		fail(err)
	}
}

// acker acks the handled positions in batches: at ackBatch of them, or at the next tick (every
// ackEvery). When handled is closed it sends what is left and reports how many were acked.
func acker(client eh.EventHorizonClient, group string, memberID <-chan string, handled <-chan int64, done chan<- uint32) {
	member := <-memberID
	var acked uint32
	pending := []int64{}
	flush := func() {
		if len(pending) == 0 {
			return
		}
		// Not the Consume call's context: the last acks must go out after the call was cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		answer, err := client.Ack(ctx, &eh.AckRequest{Group: group, MemberId: member, Positions: pending})
		if err != nil {
			fail(err)
		}
		acked += answer.GetAcked()
		pending = pending[:0]
	}
	ticker := time.NewTicker(ackEvery)
	defer ticker.Stop()
	for {
		select {
		case position, open := <-handled:
			if !open {
				flush()
				done <- acked
				return
			}
			pending = append(pending, position)
			if len(pending) >= ackBatch {
				flush()
			}
		case <-ticker.C:
			flush()
		}
	}
}
