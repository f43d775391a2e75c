package items;

/** The sample's handler over the MongoDB Java driver: handler items.DriverItemsHandler::handleRequest. */
public class DriverItemsHandler extends ItemsHandler {
    public DriverItemsHandler() {
        super(DriverItems.fromEnvironment());
    }
}
