module github.com/stompgate/stompgate

go 1.24

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/go-stomp/stomp/v3 v3.1.5 // indirect
	github.com/rabbitmq/amqp091-go v1.16.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	github.com/urfave/cli/v2 v2.27.7 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sys v0.13.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
