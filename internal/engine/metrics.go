package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

// classCollector exports the circuit pool's open circuits per isolation
// class (the isolation flags of each circuit's first stream) at scrape
// time, as gotor_circuits_by_isolation_class{class="..."}.
type classCollector struct {
	c    *Engine
	desc *prometheus.Desc
}

func newClassCollector(c *Engine) *classCollector {
	return &classCollector{c: c, desc: prometheus.NewDesc("gotor_circuits_by_isolation_class",
		"Open circuits bound to a stream, by the isolation flags of their first stream.", []string{"class"}, nil)}
}

func (cc *classCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cc.desc }

func (cc *classCollector) Collect(ch chan<- prometheus.Metric) {
	if cc.c.circs == nil {
		return
	}
	for class, n := range cc.c.circs.Metrics().CircuitsByClass {
		ch <- prometheus.MustNewConstMetric(cc.desc, prometheus.GaugeValue, float64(n), class)
	}
}
