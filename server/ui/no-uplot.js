/* no-uplot.js -- served as /ui/uPlot.iife.min.js when the build found no
 * node_modules/uplot (make deps-node vendors it): the dashboard sees no
 * uPlot and shows its numbers as tables. */
