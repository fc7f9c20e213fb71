// Command ehcheck is the cross-language check of the generated Go client: it drives Event
// Horizon and prints JSON lines on stdout for test/crosslang/crosslang.test.ts to check.
//
//	append ADDRESS STREAM COUNT     appends COUNT entries, prints {"appended": [versions...]}
//	read ADDRESS STREAM             prints {"entries": [...]} read with Read from version 0
//	subscribe ADDRESS STREAM COUNT  prints {"caught_up": v} when live, one {"entry": ...} per
//	                                entry from version 0, and stops after COUNT entries
//	conflict ADDRESS STREAM         appends with a wrong expected_version, prints the ErrorInfo
//	follow ADDRESS SUBTREE LIVE POSITION_FILE
//	                                follows the feed of SUBTREE with SubscribeFeed after the
//	                                position stored in POSITION_FILE (0 when there is none), as a
//	                                consumer would: prints one {"entry": ...} per entry, then
//	                                {"caught_up": position}, then stops after LIVE live entries,
//	                                storing the position of everything it handled
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	eventhorizonv1 "github.com/eventhorizon/eventhorizon/clients/go/eventhorizon/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

type event struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type entry struct {
	Version int64   `json:"version"`
	Events  []event `json:"events"`
}

func entryJSON(e *eventhorizonv1.Entry) entry {
	out := entry{Version: e.GetVersion(), Events: []event{}}
	for _, ev := range e.GetEvents() {
		out.Events = append(out.Events, event{Type: ev.GetType(), Data: json.RawMessage(ev.GetData())})
	}
	return out
}

// feedEntry is a feed entry as the test compares them: stream@version at a position.
type feedEntry struct {
	Stream   string   `json:"stream"`
	Version  int64    `json:"version"`
	Position int64    `json:"position"`
	Types    []string `json:"types"`
}

func feedEntryJSON(e *eventhorizonv1.FeedEntry) feedEntry {
	out := feedEntry{Stream: e.GetStream(), Version: e.GetVersion(), Position: e.GetPosition(), Types: []string{}}
	for _, ev := range e.GetEvents() {
		out.Types = append(out.Types, ev.GetType())
	}
	return out
}

func emit(value interface{}) {
	line, err := json.Marshal(value)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(line))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ehcheck:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: ehcheck append|read|subscribe|conflict|follow ADDRESS STREAM [COUNT] [POSITION_FILE]"))
	}
	command, address, stream := os.Args[1], os.Args[2], os.Args[3]
	count := 0
	if len(os.Args) > 4 {
		n, err := strconv.Atoi(os.Args[4])
		if err != nil {
			fail(err)
		}
		count = n
	}
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	client := eventhorizonv1.NewEventHorizonClient(conn)

	switch command {
	case "append":
		appendEntries(client, stream, count)
	case "read":
		read(client, stream)
	case "subscribe":
		subscribe(client, stream, count)
	case "conflict":
		conflict(client, stream)
	case "follow":
		if len(os.Args) < 6 {
			fail(fmt.Errorf("usage: ehcheck follow ADDRESS SUBTREE LIVE POSITION_FILE"))
		}
		follow(client, stream, count, os.Args[5])
	default:
		fail(fmt.Errorf("unknown command %q", command))
	}
}

func appendEntries(client eventhorizonv1.EventHorizonClient, stream string, count int) {
	versions := []int64{}
	for n := 0; n < count; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		data, _ := json.Marshal(map[string]interface{}{"n": n, "from": "go"})
		response, err := client.Append(ctx, &eventhorizonv1.AppendRequest{
			Stream: stream,
			Events: []*eventhorizonv1.Event{{Type: "xlang.go", Data: data, ContentType: "application/json"}},
		})
		cancel()
		if err != nil {
			fail(err)
		}
		versions = append(versions, response.GetCursor().GetVersion())
	}
	emit(map[string]interface{}{"appended": versions})
}

func read(client eventhorizonv1.EventHorizonClient, stream string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	from := int64(0)
	response, err := client.Read(ctx, &eventhorizonv1.ReadRequest{Stream: stream, FromVersion: &from})
	if err != nil {
		fail(err)
	}
	entries := []entry{}
	for _, e := range response.GetEntries() {
		entries = append(entries, entryJSON(e))
	}
	emit(map[string]interface{}{"entries": entries, "head": response.GetHeadVersion()})
}

func subscribe(client eventhorizonv1.EventHorizonClient, stream string, count int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from := int64(0)
	messages, err := client.Subscribe(ctx, &eventhorizonv1.SubscribeRequest{Stream: stream, FromVersion: &from})
	if err != nil {
		fail(err)
	}
	seen := 0
	for seen < count {
		message, err := messages.Recv()
		if err != nil {
			fail(err)
		}
		switch m := message.GetMessage().(type) {
		case *eventhorizonv1.SubscribeResponse_CaughtUp:
			emit(map[string]interface{}{"caught_up": m.CaughtUp.GetVersion()})
		case *eventhorizonv1.SubscribeResponse_Entry:
			emit(map[string]interface{}{"entry": entryJSON(m.Entry)})
			seen++
		}
	}
}

func conflict(client eventhorizonv1.EventHorizonClient, stream string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	expected := int64(999)
	_, err := client.Append(ctx, &eventhorizonv1.AppendRequest{
		Stream:          stream,
		Events:          []*eventhorizonv1.Event{{Type: "xlang.go", Data: []byte("{}")}},
		ExpectedVersion: &expected,
	})
	if err == nil {
		emit(map[string]interface{}{"code": "OK"})
		return
	}
	st := status.Convert(err)
	result := map[string]interface{}{"code": st.Code().String(), "reason": nil, "domain": nil, "actual_version": nil}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			result["reason"] = info.GetReason()
			result["domain"] = info.GetDomain()
			result["actual_version"] = info.GetMetadata()["actual_version"]
		}
	}
	emit(result)
}

// follow consumes the feed of a subtree the way a projection would: it resumes after the position
// it stored, handles each entry (here: prints it) and then stores that entry's position.
// Checkpoints and caught_up are stored too, so that entries a filter skipped are not read again.
func follow(client eventhorizonv1.EventHorizonClient, subtree string, live int, positionFile string) {
	position := loadPosition(positionFile)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: a feed stays open
	defer cancel()
	feed, err := client.SubscribeFeed(ctx, &eventhorizonv1.SubscribeFeedRequest{
		Selector:      &eventhorizonv1.FeedSelector{Stream: subtree},
		AfterPosition: position,
	})
	if err != nil {
		fail(err)
	}
	caughtUp := false
	for seen := 0; !caughtUp || seen < live; {
		message, err := feed.Recv()
		if err != nil {
			fail(err) // a long-lived consumer would follow again after the stored position
		}
		switch m := message.GetMessage().(type) {
		case *eventhorizonv1.SubscribeFeedResponse_Entry:
			emit(map[string]interface{}{"entry": feedEntryJSON(m.Entry)})
			storePosition(positionFile, m.Entry.GetPosition())
			if caughtUp {
				seen++
			}
		case *eventhorizonv1.SubscribeFeedResponse_Checkpoint:
			storePosition(positionFile, m.Checkpoint.GetPosition())
		case *eventhorizonv1.SubscribeFeedResponse_CaughtUp:
			storePosition(positionFile, m.CaughtUp.GetPosition())
			emit(map[string]interface{}{"caught_up": m.CaughtUp.GetPosition()})
			caughtUp = true
		}
	}
}

// loadPosition reads the stored feed position: 0 (the beginning of the feed) when there is none.
func loadPosition(file string) int64 {
	text, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		fail(err)
	}
	position, err := strconv.ParseInt(strings.TrimSpace(string(text)), 10, 64)
	if err != nil {
		fail(err)
	}
	return position
}

// storePosition replaces the stored feed position at once (write, then rename).
func storePosition(file string, position int64) {
	temporary := file + ".tmp"
	if err := os.WriteFile(temporary, []byte(strconv.FormatInt(position, 10)+"\n"), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(temporary, file); err != nil {
		fail(err)
	}
}
